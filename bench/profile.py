"""Where a service's CPU goes under a stage's load: py-spy attaches to the running service
(uvicorn on uvloop, exactly as the stage runs it) for the measured part of the load only, so
start-up and idle time stay out of the samples. Intake is profiled under stage 1's or stage 2's
load; reporting under stage 6's county summaries (from its cache, as between changes);
evaluation while it drains the sustained-pipeline stage's backlog (`evaluation-sustained`, from
the first batch posted until reporting shows the last change).

Writes profile-LOAD.txt (collapsed stacks, for flame-graph tools or grep) and
profile-LOAD.md (self time by function and by package, time inside the project's own functions).
"""

import asyncio
import signal
import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from bench.environment import DEMO_COUNTY, isolated_environment
from bench.intake_batch import load_batches
from bench.intake_single import INTAKE_APP, load_single_events
from bench.load import LoadResult
from bench.pipeline import PROVINCE, PROVINCE_CODE, villages_of
from bench.report import ROOT
from bench.reporting import CLIENTS, PERIOD, counties, http_load, running_reporting
from bench.services import Service
from bench.stage import BenchContext
from bench.sustained import measure as measure_sustained
from shared.access.models import Role

SAMPLES_PER_SECOND = 250
PROJECT_PATHS = ("services/", "shared/")

Load = Callable[[BenchContext, Service, float], Awaitable[LoadResult]]


async def _single_events(ctx: BenchContext, service: Service, seconds: float) -> LoadResult:
    keys = await ctx.env.create_keys(role=Role.desk, scope_code=DEMO_COUNTY, count=ctx.clients)
    return await load_single_events(ctx, service, keys=keys, seconds=seconds)


async def _batches(ctx: BenchContext, service: Service, seconds: float) -> LoadResult:
    (key,) = await ctx.env.create_keys(role=Role.desk, scope_code=DEMO_COUNTY, count=1)
    return await load_batches(ctx, service, key=key, seconds=seconds)


def _reads(paths: Callable[[], list[str]]) -> Load:
    """Stage 6's load over the given reporting paths, one reader key per client."""

    async def load(ctx: BenchContext, service: Service, seconds: float) -> LoadResult:
        keys = await ctx.env.create_keys(role=Role.reader, scope_code=PROVINCE_CODE, count=CLIENTS)
        return (await http_load(ctx, service, keys=keys, paths=paths(), seconds=seconds)).load

    return load


# Not a load of its own: the sustained-pipeline stage, with evaluation sampled (`_drain`).
DRAIN = "evaluation-sustained"
DRAIN_EVENTS = 100_000

LOADS: dict[str, Load] = {
    "intake-single": _single_events,
    "intake-batch": _batches,
    "reporting-summary": _reads(
        lambda: [f"/v1/reports/summary?root={c}&period={PERIOD}" for c in counties()]
    ),
    "reporting-status": _reads(
        lambda: [f"/v1/units/{v}/status?period={PERIOD}" for v in villages_of(PROVINCE)]
    ),
    "reporting-eligible": _reads(
        lambda: [f"/v1/reports/eligible?root={c}&period={PERIOD}&level=village" for c in counties()]
    ),
}


@asynccontextmanager
async def _service_under(load_name: str, ctx: BenchContext) -> AsyncIterator[Service]:
    if load_name.startswith("reporting"):
        async with running_reporting(ctx) as service:
            yield service
    else:
        async with ctx.service("intake", INTAKE_APP, SANWU_INTAKE_RUN_RELAY="false") as service:
            yield service


async def profile_service(load_name: str, *, seconds: float, clients: int, output: Path) -> Path:
    """Profile the service the named load is for; returns the summary's path."""
    stacks = output / f"profile-{load_name}.txt"
    with tempfile.TemporaryDirectory(prefix="sanwu-bench-") as work_dir:
        async with isolated_environment(Path(work_dir)) as env:
            ctx = BenchContext(quick=True, env=env, results_dir=output, clients=clients)
            ctx.stage_name = f"profile {load_name}"
            if load_name == DRAIN:
                title, heading = await _drain(ctx, stacks)
            else:
                title, heading = await _under_load(ctx, load_name, stacks, seconds=seconds)
    summary = output / f"profile-{load_name}.md"
    summary.write_text(summarise(stacks, title=title, heading=heading), encoding="utf-8")
    return summary


async def _under_load(
    ctx: BenchContext, load_name: str, stacks: Path, *, seconds: float
) -> tuple[str, str]:
    load = LOADS[load_name]
    async with _service_under(load_name, ctx) as service:
        await load(ctx, service, 2.0)  # warm caches and pools first
        ctx.step(f"sampling {service.name} (pid {service.pid}) for {seconds:g} s")
        recorder = await record(service.pid, seconds=seconds, output=stacks)
        result = await load(ctx, service, seconds)
        if await recorder.wait() != 0:
            raise RuntimeError(f"py-spy failed (exit {recorder.returncode})")
    ctx.step(f"under the profiler: {result.describe()}")
    return service.name, result.describe()


async def _drain(ctx: BenchContext, stacks: Path) -> tuple[str, str]:
    """Evaluation sampled from the first batch of the sustained stage's backlog until
    reporting shows its last change."""

    async def sample(service: Service) -> Callable[[], Awaitable[None]]:
        ctx.step(f"sampling {service.name} (pid {service.pid}) until the backlog is shown")
        recorder = await record(service.pid, seconds=None, output=stacks)

        async def stop() -> None:
            recorder.send_signal(signal.SIGINT)  # py-spy writes what it sampled and ends
            await recorder.wait()

        return stop

    measured = await measure_sustained(ctx, DRAIN_EVENTS, sampler=sample)
    heading = (
        f"{measured.messages:,} events drained at {measured.live_rate:,.0f} events/s "
        f"(the rebuild: {measured.rebuild_rate:,.0f}/s), shown in reporting after "
        f"{measured.timeline.shown:.1f} s"
    )
    return "evaluation", heading


async def record(pid: int, *, seconds: float | None, output: Path) -> asyncio.subprocess.Process:
    """py-spy sampling `pid` for `seconds`, or until it is sent SIGINT."""
    py_spy = Path(sys.executable).with_name("py-spy")
    duration = ["--duration", str(round(seconds))] if seconds is not None else []
    return await asyncio.create_subprocess_exec(
        str(py_spy),
        "record",
        "--pid",
        str(pid),
        *duration,
        "--rate",
        str(SAMPLES_PER_SECOND),
        "--format",
        "raw",
        "--gil",  # only samples of a thread holding the GIL: Python at work, not waiting
        "--function",  # aggregate by function, not by line
        "--output",
        str(output),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def summarise(stacks_file: Path, *, title: str, heading: str, top: int = 25) -> str:
    """Self time by function and by package, and inclusive time of the project's functions,
    as shares of all samples taken while the process was busy."""
    self_time: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    project: Counter[str] = Counter()
    total = 0
    for line in stacks_file.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        total += count
        self_time[_short(frames[-1])] += count
        by_package[_package(frames[-1])] += count
        for frame in {_short(f) for f in frames if _in_project(f)}:
            project[frame] += count
    sections = [
        f"# {title.capitalize()} CPU profile\n\n{heading}; "
        f"{total:,} busy samples at {SAMPLES_PER_SECOND}/s.",
        _table("Self time by package", by_package, total=total, top=top),
        _table("Self time by function", self_time, total=total, top=top),
        _table("Inclusive time of the project's functions", project, total=total, top=top),
    ]
    return "\n\n".join(sections) + "\n"


def _table(title: str, counts: Counter[str], *, total: int, top: int) -> str:
    rows = [f"| {100 * n / total:5.1f} % | `{name}` |" for name, n in counts.most_common(top)]
    return "\n".join([f"## {title}", "", "| share | where |", "|---:|---|", *rows])


def _location(frame: str) -> tuple[str, str]:
    """'function (path/to/file.py:12)' -> ('function', 'path/to/file.py:12')."""
    function, _, where = frame.rpartition(" (")
    return function, where.rstrip(")")


def _trim(path: str) -> str:
    stdlib = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/"
    for marker in ("site-packages/", f"{ROOT}/", stdlib):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _short(frame: str) -> str:
    function, where = _location(frame)
    return f"{function} ({_trim(where)})"


def _package(frame: str) -> str:
    _, where = _location(frame)
    trimmed = _trim(where)
    return trimmed.split("/", 1)[0] if "/" in trimmed else trimmed.split(":", 1)[0]


def _in_project(frame: str) -> bool:
    _, where = _location(frame)
    return _trim(where).startswith(PROJECT_PATHS) and "site-packages" not in where
