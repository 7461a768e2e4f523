"""What the evaluation, end-to-end, reporting and growth stages share within one run: the
province-sized registry, the topics the three services talk over, waiting for the pipeline to
catch up, and the CPU of the run's PostgreSQL backends.

State that one stage leaves for a later one (the province is loaded, a rebuild has filled
evaluation's tables) is kept per run, so any stage can also run on its own and then does the
setup it needs itself."""

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import sqlalchemy as sa

from bench.environment import BenchEnvironment
from bench.services import CLOCK_TICKS
from bench.stage import BenchContext
from services.reporting.config import ReportingSettings
from shared import kafka
from shared.db import asyncpg_dsn
from shared.registry.generator import ProvinceShape

# The province of the evaluation and reporting stages: 100 counties, 2,000 townships,
# 30,000 villages. The end-to-end stage posts to villages of a second province, so that each of
# its events is the first to touch its village.
PROVINCE = ProvinceShape(province="35")
PROVINCE_CODE = f"{PROVINCE.province}0000000000"
E2E_PROVINCE = ProvinceShape(province="36", cities=5, counties=50)
E2E_PROVINCE_CODE = f"{E2E_PROVINCE.province}0000000000"


@dataclass
class RunState:
    provinces: dict[str, Path] = field(default_factory=dict)
    rebuilt_events: int = 0  # events of the last rebuild swapped into evaluation's tables
    live_prefix: str | None = None
    # (size, cost) points measured by the full-size stages, for the growth stage
    rebuild_points: dict[int, tuple[float, float]] = field(default_factory=dict)
    reporting_points: dict[str, dict[int, float]] = field(default_factory=dict)


_STATES: dict[str, RunState] = {}


def state(ctx: BenchContext) -> RunState:
    return _STATES.setdefault(ctx.env.run_id, RunState())


async def ensure_province(ctx: BenchContext, shape: ProvinceShape = PROVINCE) -> Path:
    """Load a synthetic province into the run's registry once."""
    run = state(ctx)
    if shape.province not in run.provinces:
        ctx.step(f"loading province {shape.province} ({shape.counties} counties)")
        run.provinces[shape.province] = await ctx.env.load_province(shape)
    return run.provinces[shape.province]


def villages_of(shape: ProvinceShape) -> list[str]:
    """Every village code of a generated province, in registry order."""
    from shared.registry.generator import generate

    return [code for code, _, level, _ in generate(shape) if level == "village"]


async def live_prefix(ctx: BenchContext) -> str:
    """The topic prefix the running services use in the end-to-end and reporting stages:
    fresh topics, so that evaluation does not first consume what the relay stage left on the
    run's petition-event topic. Created once per run, deleted with the run's topics."""
    run = state(ctx)
    if run.live_prefix is None:
        run.live_prefix = await fresh_prefix(ctx, "live")
    return run.live_prefix


async def fresh_prefix(ctx: BenchContext, name: str) -> str:
    """A topic prefix under the run's (`<run's prefix><name>.`) with every project topic
    created afresh, deleted with the run's topics."""
    settings = ctx.env.settings()
    suffix = len(settings.topic_prefix)
    for model in kafka.topic_specs(settings):
        await ctx.env.scratch_topic(f"{name}.{model.name[suffix:]}", like=model.name)
    return f"{ctx.env.topic_prefix}{name}."


async def scalar(env: BenchEnvironment, statement: str, **params: object) -> int:
    async with env.db.engine.connect() as connection:
        return int((await connection.execute(sa.text(statement), params)).scalar_one())


async def consumer_lag(env: BenchEnvironment, *, topic: str, group: str) -> int:
    """Messages on `topic` that `group` has not committed yet."""
    ends = await kafka.end_offsets(env.settings(), topic)
    admin = kafka.admin(env.settings())
    await admin.start()
    try:
        committed = await kafka.committed_offsets(admin, group, list(ends))
    finally:
        await admin.close()
    if committed is None:  # not known yet: all of it counts as lag
        return sum(ends.values())
    return sum(end - committed.get(tp, 0) for tp, end in ends.items())


async def wait_for_statuses(ctx: BenchContext, *, prefix: str, timeout: float = 300) -> None:
    """Until evaluation's outbox is empty and reporting has applied the whole status,
    indicator and warning topics: what a rebuild published has reached the read model."""
    settings = ReportingSettings(topic_prefix=prefix)
    followed = {
        "statuses": (settings.status_topic, settings.consumer_group),
        "indicators": (settings.indicator_topic, settings.indicator_consumer_group),
        "warnings": (settings.warning_topic, settings.warning_consumer_group),
    }
    deadline = time.monotonic() + timeout
    shown = 0.0
    while True:
        outbox = await scalar(ctx.env, "SELECT count(*) FROM evaluation.outbox")
        lags = {
            name: await consumer_lag(ctx.env, topic=topic, group=group)
            for name, (topic, group) in followed.items()
        }
        if outbox == 0 and not any(lags.values()):
            return
        behind = ", ".join(f"{name} {lag:,}" for name, lag in lags.items())
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the read model not caught up in {timeout:.0f} s: outbox {outbox:,}; {behind}"
            )
        if time.monotonic() - shown > 5:
            ctx.step(f"waiting for reporting to catch up: outbox {outbox:,}; behind: {behind}")
            shown = time.monotonic()
        await asyncio.sleep(0.5)


def _process_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class BackendCpu:
    """CPU seconds used by the PostgreSQL backends serving the run's database (every
    connection of the services and of the bench); the server runs on this machine."""

    def __init__(self, env: BenchEnvironment) -> None:
        self.dsn = asyncpg_dsn(env.database_url)
        self.database = env.database
        self._start: dict[int, float] = {}

    async def _pids(self) -> list[int]:
        connection = await asyncpg.connect(self.dsn)
        try:
            rows = await connection.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                self.database,
            )
        finally:
            await connection.close()
        return [row["pid"] for row in rows]

    async def start(self) -> None:
        self._start = {pid: _process_cpu(pid) for pid in await self._pids()}

    async def seconds(self) -> float:
        """CPU the backends used since `start` (new backends count from zero)."""
        pids = set(await self._pids()) | set(self._start)
        return sum(max(0.0, _process_cpu(pid) - self._start.get(pid, 0.0)) for pid in pids)
