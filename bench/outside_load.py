"""Stage: an outside load generator, wrk, against two of the bench's own loads: intake's single
events (as the intake-single stage posts them) and a county's summary (as the reporting stage
reads them). wrk and the bench's load generator take turns for the same time with as many
connections and the same keys, so both see the same machine; their throughputs should agree
within 15 %, and where they do not, the CPU each generator and the service used says why.

wrk is Debian's package (bench/setup.sh installs it); its Lua script is bench/outside_load.lua."""

import asyncio
import math
import os
import re
import resource
import shutil
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.environment import DEMO_COUNTY
from bench.events import DESTINATIONS, OCCURRED_AT
from bench.intake_single import INTAKE_APP, load_single_events
from bench.load import CpuMeter, CpuUse, LoadResult, combined
from bench.pipeline import PROVINCE_CODE, scalar
from bench.report import Result, Target
from bench.reporting import CLIENTS, PERIOD, counties, http_load, running_reporting
from bench.services import Service
from bench.stage import BenchContext, Stage
from shared.access.models import Role

NAME = "outside load"
SCRIPT = Path(__file__).with_name("outside_load.lua")
AGREEMENT_PERCENT = 15
SATURATED = 0.9  # of the cores in question, busy: they set the pace
WRK_TIMEOUT = "30s"  # a request slower than this is an error (wrk's own default is 2 s)
GATHERED = "sanwu_intake_gathered_events"  # single events journalled by one statement

TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}  # to milliseconds
_TIME = r"([\d.]+)(us|ms|s|m|h)"
_REQUESTS = re.compile(rf"^\s*(\d+) requests in {_TIME}", re.MULTILINE)
_PERCENTILE = re.compile(rf"^\s*([\d.]+)%\s+{_TIME}\s*$", re.MULTILINE)
_NOT_2XX = re.compile(r"^Not 2xx responses: (\d+)", re.MULTILINE)  # the script's count
_SOCKET_ERRORS = re.compile(
    r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.MULTILINE
)


LoadOrRun = TypeVar("LoadOrRun")


class WrkMissing(RuntimeError):
    pass


class WrkOutputUnreadable(ValueError):
    pass


@dataclass(frozen=True)
class WrkRun:
    """What one or more runs of wrk measured; CPU seconds are filled in by `run_wrk`."""

    requests: int
    seconds: float
    latency_ms: dict[float, float]  # percentile → milliseconds
    not_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    client_cpu_seconds: float = 0.0
    server_cpu_seconds: float = 0.0
    machine_cpu_seconds: float = 0.0  # every process's, the generator's and the service's too

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def client_cores(self) -> float:
        return self.client_cpu_seconds / self.seconds

    @property
    def server_cores(self) -> float:
        return self.server_cpu_seconds / self.seconds

    @property
    def machine_cores(self) -> float:
        return self.machine_cpu_seconds / self.seconds

    @property
    def server_cpu_per_request_us(self) -> float:
        return self.server_cpu_seconds / max(1, self.requests) * 1e6

    def latency(self, p: float) -> float:
        return self.latency_ms[p]

    def failure(self) -> str | None:
        """Why the run does not count, if it does not."""
        if self.not_2xx:
            return f"{self.not_2xx:,} answers of wrk's {self.requests:,} were not 2xx"
        errors = {kind: n for kind, n in self.socket_errors.items() if n}
        return f"wrk's socket errors: {errors}" if errors else None

    def describe(self) -> str:
        return (
            f"{self.requests_per_second:,.0f} requests/s ({self.requests:,} requests in "
            f"{self.seconds:.1f} s), p50 {self.latency(50):.1f} ms, p99 {self.latency(99):.1f} "
            f"ms; CPU cores: wrk {self.client_cores:.2f}, "
            f"server {self.server_cores:.2f}, machine {self.machine_cores:.2f}"
        )


def parse_wrk(output: str) -> WrkRun:
    """wrk 4's report (run with --latency and bench/outside_load.lua): requests and time, the
    latency distribution, the script's count of answers other than 2xx, and socket errors
    (a line wrk prints only when there are some)."""
    requests = _REQUESTS.search(output)
    percentiles = _PERCENTILE.findall(output)
    not_2xx = _NOT_2XX.search(output)
    if requests is None or not percentiles or not_2xx is None:
        raise WrkOutputUnreadable(
            f"no request count, latency distribution or count of answers other than 2xx in:\n"
            f"{output}"
        )
    socket = _SOCKET_ERRORS.search(output)
    kinds = ("connect", "read", "write", "timeout")
    return WrkRun(
        requests=int(requests[1]),
        seconds=_milliseconds(requests[2], requests[3]) / 1e3,
        latency_ms={float(p): _milliseconds(value, unit) for p, value, unit in percentiles},
        not_2xx=int(not_2xx[1]),
        socket_errors=dict(zip(kinds, map(int, socket.groups()), strict=True)) if socket else {},
    )


def _milliseconds(value: str, unit: str) -> float:
    return float(value) * TIME_UNITS[unit]


def combined_runs(runs: list[WrkRun]) -> WrkRun:
    """Turns of wrk as one: counts and CPU summed; wrk reports percentiles, not its samples,
    so each percentile is the turns' own, weighted by their requests."""
    requests = sum(run.requests for run in runs)
    socket_errors: dict[str, int] = {}
    for run in runs:
        for kind, count in run.socket_errors.items():
            socket_errors[kind] = socket_errors.get(kind, 0) + count
    return WrkRun(
        requests=requests,
        seconds=sum(run.seconds for run in runs),
        latency_ms={
            p: sum(run.latency_ms[p] * run.requests for run in runs) / max(1, requests)
            for p in runs[0].latency_ms
        },
        not_2xx=sum(run.not_2xx for run in runs),
        socket_errors=socket_errors,
        client_cpu_seconds=sum(run.client_cpu_seconds for run in runs),
        server_cpu_seconds=sum(run.server_cpu_seconds for run in runs),
        machine_cpu_seconds=sum(run.machine_cpu_seconds for run in runs),
    )


def wrk_command() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing(
            "wrk is not installed: `make bench` installs it through bench/setup.sh "
            "(apt-get install -y wrk, as root)"
        )
    return path


async def run_wrk(
    *, url: str, script: Path, args: list[str], connections: int, seconds: int, server: Service
) -> WrkRun:
    """wrk on one thread (the bench's load generator is one process too), with the CPU wrk and
    the server used while it ran."""
    command = [wrk_command(), "--threads", "1", "--connections", str(connections)]
    command += ["--duration", f"{seconds}s", "--timeout", WRK_TIMEOUT, "--latency"]
    command += ["--script", str(script), url, "--", *args]
    server_before, wrk_before, machine = server.cpu_seconds(), _children_cpu_seconds(), CpuMeter()
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    server_seconds, machine_cores = server.cpu_seconds() - server_before, machine.read().machine
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited with {process.returncode}: {stderr.decode().strip()}")
    run = parse_wrk(stdout.decode())
    return replace(
        run,
        client_cpu_seconds=_children_cpu_seconds() - wrk_before,
        server_cpu_seconds=server_seconds,
        machine_cpu_seconds=machine_cores * run.seconds,
    )


@dataclass
class Gathered:
    """Intake's journal statements for single events, and the events they took (its histogram
    sanwu_intake_gathered_events), added up over the turns of one generator."""

    statements: float = 0.0
    events: float = 0.0

    @property
    def events_per_statement(self) -> float:
        return self.events / self.statements if self.statements else math.nan


async def gathered_so_far(service: Service) -> Gathered:
    """What intake's /metrics says it journalled so far."""
    async with aiohttp.ClientSession() as session, session.get(f"{service.url}/metrics") as answer:
        return gathered_in(await answer.text())


def gathered_in(text: str) -> Gathered:
    """The statements and events of intake's histogram in a Prometheus text exposition."""
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == GATHERED
        for sample in family.samples
    }
    return Gathered(samples[f"{GATHERED}_count"], samples[f"{GATHERED}_sum"])


async def counting_gathered(
    service: Service, into: Gathered, load: Awaitable[LoadOrRun]
) -> LoadOrRun:
    """`load`, with the statements intake journalled meanwhile added to `into`."""
    before = await gathered_so_far(service)
    result = await load
    after = await gathered_so_far(service)
    into.statements += after.statements - before.statements
    into.events += after.events - before.events
    return result


def _children_cpu_seconds() -> float:
    """CPU of this process's finished children: wrk's, once it has been waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def in_turns(
    bench_load: Callable[[float], Awaitable[LoadResult]],
    wrk_load: Callable[[int], Awaitable[WrkRun]],
    *,
    seconds: int,
    rounds: int,
) -> tuple[LoadResult, WrkRun]:
    """The bench's load and wrk for `seconds` each, in `rounds` turns (A B A B), so that what
    else the machine does weighs on both alike; wrk fails the stage on any error."""
    ours: list[LoadResult] = []
    theirs: list[WrkRun] = []
    for _ in range(rounds):
        ours.append(await bench_load(seconds / rounds))
        theirs.append(await wrk_load(seconds // rounds))
    wrk = combined_runs(theirs)
    if (failure := wrk.failure()) is not None:
        raise RuntimeError(failure)
    return combined(ours), wrk


async def single_events(ctx: BenchContext, *, seconds: int, rounds: int) -> list[Result]:
    """Intake's POST /v1/events, relay off, as the intake-single stage loads it."""
    keys = await ctx.env.create_keys(role=Role.desk, scope_code=DEMO_COUNTY, count=ctx.clients)
    data = ctx.env.work_dir / "outside-load-events.txt"
    villages = await ctx.env.unit_codes(level="village", within=DEMO_COUNTY)
    lines = [f"key {k}" for k in keys] + [f"village {v}" for v in villages]
    lines += [f"destination {d}" for d in DESTINATIONS] + [f"occurred_at {OCCURRED_AT}"]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ours, theirs = Gathered(), Gathered()  # over the timed turns, not the warm-up
    async with ctx.service("intake", INTAKE_APP, SANWU_INTAKE_RUN_RELAY="false") as intake:

        async def bench_load(s: float, gathered: Gathered | None = ours) -> LoadResult:
            load = load_single_events(ctx, intake, keys=keys, seconds=s)
            return await (load if gathered is None else counting_gathered(intake, gathered, load))

        async def wrk_load(s: int, gathered: Gathered | None = theirs) -> WrkRun:
            journalled = await scalar(ctx.env, "SELECT count(*) FROM intake.journal")
            load = run_wrk(
                url=f"{intake.url}/v1/events",
                script=SCRIPT,
                args=[str(data), str(uuid.uuid4())[:24]],  # the ids' first 20 hex digits
                connections=len(keys),
                seconds=s,
                server=intake,
            )
            run = await (load if gathered is None else counting_gathered(intake, gathered, load))
            added = await scalar(ctx.env, "SELECT count(*) FROM intake.journal") - journalled
            if added < run.requests:  # a repeated id is answered 200 and journalled once
                raise RuntimeError(f"wrk's {run.requests:,} events added {added:,} to the journal")
            return run

        await bench_load(1.0, None)  # warm-up
        await wrk_load(1, None)
        bench, wrk = await in_turns(bench_load, wrk_load, seconds=seconds, rounds=rounds)
        return compared(
            ctx, "intake single events", bench=bench, wrk=wrk, service=intake,
            gathered=(ours, theirs),
        )  # fmt: skip


async def county_summaries(ctx: BenchContext, *, seconds: int, rounds: int) -> list[Result]:
    """Reporting's GET /v1/reports/summary over every county, as the reporting stage reads."""
    async with running_reporting(ctx) as reporting:
        keys = await ctx.env.create_keys(role=Role.reader, scope_code=PROVINCE_CODE, count=CLIENTS)
        paths = [f"/v1/reports/summary?root={county}&period={PERIOD}" for county in counties()]
        data = ctx.env.work_dir / "outside-load-reads.txt"
        lines = [f"key {k}" for k in keys] + [f"path {p}" for p in paths]
        data.write_text("\n".join(lines) + "\n", encoding="utf-8")

        async def bench_load(s: float) -> LoadResult:
            return (await http_load(ctx, reporting, keys=keys, paths=paths, seconds=s)).load

        async def wrk_load(s: int) -> WrkRun:
            return await run_wrk(
                url=reporting.url + paths[0],
                script=SCRIPT,
                args=[str(data)],
                connections=len(keys),
                seconds=s,
                server=reporting,
            )

        await bench_load(1.0)  # warm-up
        await wrk_load(1)
        bench, wrk = await in_turns(bench_load, wrk_load, seconds=seconds, rounds=rounds)
        return compared(ctx, "county summary", bench=bench, wrk=wrk, service=reporting)


def compared(
    ctx: BenchContext,
    label: str,
    *,
    bench: LoadResult,
    wrk: WrkRun,
    service: Service,
    gathered: tuple[Gathered, Gathered] | None = None,
) -> list[Result]:
    """`gathered`: intake's statements under the bench's load and under wrk's."""
    ctx.step(f"{label}: the bench's load {bench.describe('requests/s')}")
    ctx.step(f"{label}: wrk {wrk.describe()}")
    results = figures(label, bench=bench, wrk=wrk)
    if gathered is not None:
        ours, theirs = gathered
        results.append(
            Result(
                f"{NAME}, {label}: events a journal statement took, wrk",
                theirs.events_per_statement,
                "events",
                baseline=ours.events_per_statement,
            )
        )
    if any(result.met is False for result in results):
        grouped = scheduled_with_generators(service)
        note = disagreement(label, bench=bench, wrk=wrk, grouped=grouped)
        if gathered is not None:
            note += " " + answered_together(bench=bench, wrk=wrk, gathered=gathered)
        ctx.note(note)
    return results


def scheduled_with_generators(service: Service) -> bool:
    """Whether the service shares the scheduler's group of this process and of wrk (started
    from it): the same session, with Linux's autogroup on."""
    autogroup = Path("/proc/sys/kernel/sched_autogroup_enabled")
    enabled = autogroup.exists() and autogroup.read_text(encoding="ascii").strip() == "1"
    return enabled and os.getsid(service.pid) == os.getsid(0)


def figures(label: str, *, bench: LoadResult, wrk: WrkRun) -> list[Result]:
    """wrk's figures against the bench's; the target is on how far apart the throughputs
    are, |wrk ÷ bench − 1|, either way."""
    ours = bench.items_per_second
    difference = abs(wrk.requests_per_second / ours - 1) * 100 if ours else math.nan
    bench_client = bench.cpu.client if bench.cpu else None
    return [
        Result(
            f"{NAME}, {label}: wrk vs the bench's load",
            wrk.requests_per_second,
            "requests/s",
            baseline=ours,
        ),
        Result(
            f"{NAME}, {label}: throughputs apart by",
            difference,
            "%",
            target=Target.at_most(AGREEMENT_PERCENT),
        ),
        Result(f"{NAME}, {label}: wrk p50", wrk.latency(50), "ms", baseline=bench.latency(50)),
        Result(f"{NAME}, {label}: wrk p99", wrk.latency(99), "ms", baseline=bench.latency(99)),
        Result(
            f"{NAME}, {label}: load generator CPU, wrk",
            wrk.client_cores,
            "cores",
            baseline=bench_client,
        ),
        Result(
            f"{NAME}, {label}: server CPU per request, wrk",
            wrk.server_cpu_per_request_us,
            "µs",
            baseline=bench.server_cpu_per_item_us,
        ),
    ]


def disagreement(label: str, *, bench: LoadResult, wrk: WrkRun, grouped: bool) -> str:
    """Why the two generators' throughputs differ, from the CPU each side used."""
    ratio = wrk.requests_per_second / bench.items_per_second
    cpu = bench.cpu or CpuUse(math.nan, math.nan, math.nan)
    cores = os.cpu_count() or 1
    measured = (
        f"{NAME}, {label}: wrk's throughput is {ratio:.2f} × the bench's load's. CPU cores "
        f"under the bench's load and under wrk: the generator {cpu.client:.2f} and "
        f"{wrk.client_cores:.2f}, the service {cpu.server or math.nan:.2f} and "
        f"{wrk.server_cores:.2f} ({bench.server_cpu_per_item_us:,.0f} and "
        f"{wrk.server_cpu_per_request_us:,.0f} µs a request), the machine {cpu.machine:.2f} and "
        f"{wrk.machine_cores:.2f} of {cores}. "
    )
    if cpu.client >= SATURATED:  # of its one core
        return measured + (
            "The bench's load generator, one process, had a core to itself and no more: it "
            "set the pace, not the service."
        )
    if cpu.machine >= SATURATED * cores:
        saturated = (
            "The machine was saturated (this run and whatever else runs on it), so the rates "
            "follow the CPU the service got under each generator."
        )
        if not grouped:
            return measured + saturated
        return (
            measured
            + saturated
            + (
                " The service is in the generators' session, which Linux schedules as one group "
                "(autogroup), so the CPU a generator takes comes out of the service's share: "
                f"together {cpu.client + (cpu.server or 0):.2f} cores under the bench's load, "
                f"{wrk.client_cores + wrk.server_cores:.2f} under wrk."
            )
        )
    return measured + (
        "Neither the generator nor the machine was saturated: the difference is in latency "
        f"per request (p50 {bench.latency(50):.1f} ms against wrk's {wrk.latency(50):.1f} ms), "
        "with the same number of connections in a closed loop."
    )


def answered_together(
    *, bench: LoadResult, wrk: WrkRun, gathered: tuple[Gathered, Gathered]
) -> str:
    """How intake's statements shape a closed loop's latency: the events of one statement are
    answered at once, and a generator sends the next requests one after another."""
    ours, theirs = gathered
    our_us = (bench.cpu.client if bench.cpu else math.nan) * bench.elapsed / bench.requests * 1e6
    their_us = wrk.client_cpu_seconds / max(1, wrk.requests) * 1e6
    spread_ms = ours.events_per_statement * our_us / 1e3
    return (
        "Intake journals the events that arrive together in one statement and answers them at "
        f"once: {ours.events_per_statement:.1f} events a statement under the bench's load, "
        f"{theirs.events_per_statement:.1f} under wrk. The bench's generator then spends "
        f"{our_us:,.0f} µs of CPU a request on its one event loop (wrk {their_us:,.0f} µs), one "
        f"request after another: the last of a statement's events is sent again about "
        f"{spread_ms:.1f} ms after the first, and waits that much longer for the next statement."
    )


async def run(ctx: BenchContext) -> list[Result]:
    wrk_command()  # before any service starts: without wrk the stage says so and stops
    seconds = ctx.pick(full=20, quick=6)
    rounds = ctx.pick(full=4, quick=2)
    ctx.step(f"wrk and the bench's load in turns, {seconds} s each in {rounds} turns")
    results = await single_events(ctx, seconds=seconds, rounds=rounds)
    results += await county_summaries(ctx, seconds=seconds, rounds=rounds)
    ctx.note(
        f"{NAME}: wrk 4 (one thread, --latency, Lua script bench/outside_load.lua) and the "
        "bench's own load generator (aiohttp, closed loop) take turns for the same time, "
        f"{rounds} times each, against the same service: intake's single events "
        f"({ctx.clients} connections, one desk key each taken in turn, each request a new "
        "event shaped as the intake-single stage's, relay off) and county summaries "
        f"({CLIENTS} connections, reader keys, every county in turn, as the reporting stage). "
        f"The throughputs should be within {AGREEMENT_PERCENT} % of each other. Any wrk answer "
        "other than 2xx, socket error, or event answered without a new journal row fails the "
        "stage. wrk reports percentiles, not samples: its p50 and p99 are the turns' own, "
        "weighted by their requests. Server CPU is the service process's."
    )
    return results


STAGE = Stage("outside-load", "An outside load generator (wrk) against the bench's", run)
