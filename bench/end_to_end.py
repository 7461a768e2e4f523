"""Stage 5: end to end. Intake (relay on), evaluation and reporting run as uvicorn processes
on topics of their own; events are posted at a steady rate, and for each one the bench times
from intake's 202 to the moment reporting's read model shows the status change it caused.

How "shows" is observed: every event is a counting visit to a village no earlier event
touched, so the village's first status change is this event's effect. Reporting's consumer
sends a NOTIFY when its apply transaction commits (the same signal its summary cache listens
for); on each one the bench reads the feed table (`reporting.status_changes`, by its primary
key, after the last seq it read) and stamps every village that appeared with the time the read
returned. A change is visible to every reader from its commit on, so the stamp is at most one
short query later than the moment reporting could show it: the figure errs on the slow side.
"""

import asyncio
import contextlib
import json
import time
import uuid

import asyncpg
import sqlalchemy as sa

from bench.load import LoadResult, Refused, client_session, open_loop
from bench.pipeline import (
    E2E_PROVINCE,
    E2E_PROVINCE_CODE,
    ensure_province,
    live_prefix,
    villages_of,
    wait_for_statuses,
)
from bench.report import LatencySeries, Result, Target, percentile
from bench.stage import BenchContext, Stage
from bench.timeline import timeline
from services.reporting.cache import CHANNEL
from shared.access.models import Role
from shared.db import asyncpg_dsn

NAME = "end to end"
RATE = 200.0
INTAKE_APP = "services.intake.main:create_app"
EVALUATION_APP = "services.evaluation.main:create_app"
REPORTING_APP = "services.reporting.main:create_app"
SETTLE_SECONDS = 30.0


class ChangeWatcher:
    """When each village first appears in reporting's feed table, by this process's clock."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.seen: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._read = asyncio.Event()  # set after every read of the feed table
        self._last_seq = 0
        self._listener: asyncpg.Connection | None = None
        self._reader: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._listener = await asyncpg.connect(self.dsn)
        self._reader = await asyncpg.connect(self.dsn)
        self._last_seq = await self._reader.fetchval(
            "SELECT coalesce(max(seq), 0) FROM reporting.status_changes"
        )
        await self._listener.add_listener(CHANNEL, lambda *_: self._wake.set())
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        assert self._reader is not None
        while True:
            with contextlib.suppress(TimeoutError):  # a slow poll as well
                await asyncio.wait_for(self._wake.wait(), 0.25)
            self._wake.clear()
            rows = await self._reader.fetch(
                "SELECT seq, unit_code FROM reporting.status_changes "
                "WHERE seq > $1 AND level = 'village' ORDER BY seq",
                self._last_seq,
            )
            now = time.perf_counter()
            for row in rows:
                self.seen.setdefault(row["unit_code"], now)
            if rows:
                self._last_seq = rows[-1]["seq"]
            self._read.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for connection in (self._listener, self._reader):
            if connection is not None:
                await connection.close()

    async def wait_for(self, units: list[str], *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while any(u not in self.seen for u in units):
            self._read.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._read.wait(), remaining)


def counting_visit(village: str) -> bytes:
    """A collective visit to the city: counts against the village and its township."""
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "type": "petition_visit",
            "unit_code": village,
            "occurred_at": "2018-06-03T09:30:00+08:00",
            "destination_level": "city",
            "headcount": 6,
        }
    ).encode()


async def post_steadily(
    url: str, *, key: str, villages: list[str], seconds: float, accepted: dict[str, float]
) -> LoadResult:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with client_session(64) as session:

        async def send(index: int) -> int:
            village = villages[index]
            async with session.post(url, data=counting_visit(village), headers=headers) as answer:
                await answer.read()
                if answer.status != 202:
                    raise Refused(answer.status)
            accepted[village] = time.perf_counter()
            return 1

        return await open_loop(send, rate=RATE, seconds=seconds)


def _latencies(accepted: dict[str, float], seen: dict[str, float]) -> tuple[list[float], int]:
    """Milliseconds from 202 to visible, and how many accepted events never showed."""
    latencies = [(seen[u] - t) * 1000 for u, t in accepted.items() if u in seen]
    return latencies, len(accepted) - len(latencies)


async def run(ctx: BenchContext) -> list[Result]:
    seconds = ctx.pick(full=60.0, quick=15.0)
    warmup = 2.0
    await ensure_province(ctx, E2E_PROVINCE)
    villages = villages_of(E2E_PROVINCE)
    needed = int(RATE * (seconds + warmup))
    if needed > len(villages):
        raise RuntimeError(
            f"{needed} events need as many villages; the province has {len(villages)}"
        )
    prefix = await live_prefix(ctx)
    (key,) = await ctx.env.create_keys(role=Role.desk, scope_code=E2E_PROVINCE_CODE, count=1)
    async with ctx.env.db.engine.begin() as connection:  # what earlier stages left unsent
        await connection.execute(sa.text("TRUNCATE intake.outbox"))
    topics = {"SANWU_TOPIC_PREFIX": prefix}
    watcher = ChangeWatcher(asyncpg_dsn(ctx.env.database_url))
    async with (
        ctx.service("reporting", REPORTING_APP, **topics) as reporting,
        ctx.service("evaluation", EVALUATION_APP, **topics),
        ctx.service("intake", INTAKE_APP, SANWU_INTAKE_RUN_RELAY="true", **topics) as intake,
    ):
        del reporting
        await wait_for_statuses(ctx, prefix=prefix)
        await watcher.start()
        try:
            url = f"{intake.url}/v1/events"
            warm_villages = villages[: int(RATE * warmup)]
            warm: dict[str, float] = {}
            ctx.step(f"warming up: {RATE:g} events/s for {warmup:g} s")
            await post_steadily(url, key=key, villages=warm_villages, seconds=warmup, accepted=warm)
            await watcher.wait_for(list(warm), timeout=SETTLE_SECONDS)
            ctx.step(f"{RATE:g} events/s for {seconds:g} s, each a first change to its village")
            accepted: dict[str, float] = {}
            load = await post_steadily(
                url,
                key=key,
                villages=villages[len(warm_villages) :],
                seconds=seconds,
                accepted=accepted,
            )
            ctx.step(f"intake: {load.describe()}")
            await watcher.wait_for(list(accepted), timeout=SETTLE_SECONDS)
        finally:
            await watcher.stop()
    latencies, missing = _latencies(accepted, watcher.seen)
    legs = await _timeline(ctx, prefix, accepted=accepted, shown=watcher.seen)
    ordered = sorted(latencies)
    p50, p99 = percentile(ordered, 50), percentile(ordered, 99)
    ctx.step(
        f"202 → visible in reporting: p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
        f"max {ordered[-1] if ordered else float('nan'):.0f} ms; {missing} not seen"
    )
    ctx.latencies.append(LatencySeries("end to end, 202 → reporting", latencies))
    ctx.note(
        f"{NAME}: {RATE:g} events/s posted to intake (relay on) for {seconds:g} s, open loop, "
        "with evaluation and reporting running; each event is a counting visit to a village "
        "nothing touched before, and its latency runs from its 202 to the first read of "
        "reporting's feed table (triggered by reporting's commit NOTIFY) that shows the "
        "village's status change, so it includes Kafka twice, evaluation and reporting."
    )
    refused = sum(load.refusals.values())
    return [
        Result(f"{NAME}: 202 → reporting p50", p50, "ms", target=Target.at_most(50)),
        Result(f"{NAME}: 202 → reporting p99", p99, "ms", target=Target.at_most(150)),
        Result(f"{NAME}: events accepted", load.items_per_second, "events/s"),
        Result(
            f"{NAME}: events not shown within {SETTLE_SECONDS:g} s",
            missing + refused,
            "events",
            target=Target.at_most(0),
        ),
        *legs,
    ]


async def _timeline(
    ctx: BenchContext, prefix: str, *, accepted: dict[str, float], shown: dict[str, float]
) -> list[Result]:
    """Where the time went (bench/timeline.py): a result per leg, its p50 and p99."""
    to_wall = time.time() - time.perf_counter()
    legs = await timeline(
        ctx.env.settings().model_copy(update={"topic_prefix": prefix}),
        asyncpg_dsn(ctx.env.database_url),
        accepted={v: t + to_wall for v, t in accepted.items()},
        shown={v: t + to_wall for v, t in shown.items()},
    )
    results = []
    for leg in legs:
        ctx.step(f"  {leg.describe()}")
        name = f"{NAME}, timeline: {leg.start} → {leg.end}"
        results.append(Result(f"{name} p50", leg.p50_ms, "ms"))
        results.append(Result(f"{name} p99", leg.p99_ms, "ms"))
    return results


STAGE = Stage("end-to-end", "End to end, intake → evaluation → reporting", run)
