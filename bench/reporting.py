"""Stage 6: reporting's reads under 50 concurrent clients (closed loop): the summary of the
province and of a county, a village's status and a page of eligible villages, over the read
model of the province that the rebuild (stage 4) computed and the status topic carried to
reporting. The baseline computes the same summary with one straightforward SQL aggregate over
the per-unit statuses joined to the registry, from the same number of concurrent clients, in
turns with the service.

The cost of a request counts the service process's CPU and that of the PostgreSQL backends of
the run's database, so the baseline (all of whose work is in PostgreSQL) is costed alike."""

import asyncio
import itertools
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from bench.evaluation_rebuild import ensure_rebuilt
from bench.load import LoadResult, Refused, client_session, closed_loop
from bench.pipeline import (
    PROVINCE,
    PROVINCE_CODE,
    BackendCpu,
    ensure_province,
    live_prefix,
    state,
    villages_of,
    wait_for_statuses,
)
from bench.report import LatencySeries, Result, Target
from bench.services import Service
from bench.stage import BenchContext, Stage
from shared.access.models import Role
from shared.db import asyncpg_dsn

NAME = "reporting"
CLIENTS = 50
PERIOD = "2018"
REPORTING_APP = "services.reporting.main:create_app"
EVALUATION_APP = "services.evaluation.main:create_app"
CAMPAIGN_LEVELS = ("county", "township", "village")

# The summary as one aggregate: every unit under the root (the registry, walked down its
# parent links) with its status if it has one, counted per direct child and level, and per
# level for the root itself (the grouping set without the child).
SUMMARY_SQL = """
WITH RECURSIVE tree(code, level, child) AS (
    SELECT code, level, NULL::text FROM registry.units WHERE code = $1
    UNION ALL
    SELECT u.code, u.level, coalesce(t.child, u.code)
    FROM registry.units u JOIN tree t ON u.parent_code = t.code
)
SELECT grouping(t.child) AS whole, t.child, t.level, count(*) AS total,
       count(*) FILTER (WHERE s.three_no = false) AS not_clean,
       coalesce(sum(s.batches_skip_level), 0) AS batches_skip_level,
       coalesce(sum(s.batches_non_reception_site), 0) AS batches_non_reception_site,
       coalesce(sum(s.batches_collective), 0) AS batches_collective,
       coalesce(sum(s.batches_incident), 0) AS batches_incident,
       coalesce(sum(s.people_skip_level), 0) AS people_skip_level,
       coalesce(sum(s.people_non_reception_site), 0) AS people_non_reception_site,
       coalesce(sum(s.people_collective), 0) AS people_collective,
       coalesce(sum(s.people_incident), 0) AS people_incident
FROM tree t
LEFT JOIN reporting.unit_status s ON s.unit_code = t.code AND s.period = $2
WHERE t.level IN ('county', 'township', 'village')
GROUP BY GROUPING SETS ((t.child, t.level), (t.level))
"""


@dataclass
class Costed:
    """A load and the CPU it cost: the service process (if any) plus PostgreSQL."""

    load: LoadResult
    postgres_seconds: float

    @property
    def cpu_per_request_us(self) -> float:
        server = self.load.cpu.server if self.load.cpu and self.load.cpu.server else 0.0
        seconds = server * self.load.elapsed + self.postgres_seconds
        return seconds / max(1, self.load.requests) * 1e6


@asynccontextmanager
async def running_reporting(ctx: BenchContext) -> AsyncIterator[Service]:
    """Reporting over the rebuilt province: the rebuild's statuses relayed by evaluation (its
    consumer off) to the status topic and applied by reporting."""
    await ensure_province(ctx)
    await ensure_rebuilt(ctx)
    prefix = await live_prefix(ctx)
    topics = {"SANWU_TOPIC_PREFIX": prefix}
    async with (
        ctx.service("reporting", REPORTING_APP, **topics) as reporting,
        ctx.service("evaluation", EVALUATION_APP, SANWU_EVALUATION_RUN_CONSUMER="false", **topics),
    ):
        await wait_for_statuses(ctx, prefix=prefix)
        yield reporting


async def http_load(
    ctx: BenchContext, service: Service, *, keys: list[str], paths: list[str], seconds: float
) -> Costed:
    """One client per key in a closed loop, taking the paths in turn."""
    headers = [{"Authorization": f"Bearer {key}"} for key in keys]
    turn = itertools.count()
    async with client_session(len(keys)) as session:

        async def send(worker: int) -> int:
            path = paths[next(turn) % len(paths)]
            async with session.get(service.url + path, headers=headers[worker]) as response:
                await response.read()
                if response.status != 200:
                    raise Refused(response.status)
            return 1

        postgres = BackendCpu(ctx.env)
        await postgres.start()
        load = await closed_loop(send, concurrency=len(keys), seconds=seconds, server=service)
        return Costed(load, await postgres.seconds())


async def sql_load(
    ctx: BenchContext, pool: asyncpg.Pool, *, roots: list[str], seconds: float
) -> Costed:
    """The baseline: CLIENTS clients, each with a connection of its own, running the aggregate."""
    turn = itertools.count()

    async def send(_: int) -> int:
        root = roots[next(turn) % len(roots)]
        async with pool.acquire() as connection:
            await connection.fetch(SUMMARY_SQL, root, PERIOD)
        return 1

    postgres = BackendCpu(ctx.env)
    await postgres.start()
    load = await closed_loop(send, concurrency=CLIENTS, seconds=seconds)
    return Costed(load, await postgres.seconds())


def combined(parts: list[Costed]) -> Costed:
    from bench.load import combined as combine_loads

    return Costed(combine_loads([p.load for p in parts]), sum(p.postgres_seconds for p in parts))


async def turns(
    loads: dict[str, Callable[[float], Awaitable[Costed]]], *, seconds: float, rounds: int
) -> dict[str, Costed]:
    """As `bench.load.interleaved`, keeping the PostgreSQL CPU of every slice."""
    parts: dict[str, list[Costed]] = {name: [] for name in loads}
    for _ in range(rounds):
        for name, load in loads.items():
            parts[name].append(await load(seconds / rounds))
    return {name: combined(results) for name, results in parts.items()}


async def summaries_agree(
    ctx: BenchContext, service: Service, *, key: str, pool: asyncpg.Pool, root: str
) -> None:
    """The baseline computes the same figures as reporting's summary (per child and level:
    total and three-no units)."""
    async with (
        client_session(1) as session,
        session.get(
            f"{service.url}/v1/reports/summary?root={root}&period={PERIOD}",
            headers={"Authorization": f"Bearer {key}"},
        ) as response,
    ):
        summary = json.loads(await response.read())
    served = {
        (child["unit"]["code"], level): (figures["total"], figures["three_no"])
        for child in summary["children"]
        for level, figures in child["levels"].items()
    }
    served |= {(None, level): (f["total"], f["three_no"]) for level, f in summary["levels"].items()}
    async with pool.acquire() as connection:
        rows = await connection.fetch(SUMMARY_SQL, root, PERIOD)
    computed = {
        (None if row["whole"] else row["child"], row["level"]): (
            row["total"],
            row["total"] - row["not_clean"],
        )
        for row in rows
    }
    differing = {k for k in served.keys() | computed.keys() if served.get(k) != computed.get(k)}
    if differing:
        sample = sorted(differing, key=str)[:3]
        raise RuntimeError(
            f"the baseline's summary of {root} differs from reporting's at {len(differing)} "
            f"figures, e.g. {[(k, served.get(k), computed.get(k)) for k in sample]}"
        )
    not_clean = sum(t - c for (child, _), (t, c) in served.items() if child is None)
    ctx.step(f"summary of {root}: the baseline agrees ({not_clean:,} units not three-no)")


@asynccontextmanager
async def baseline_pool(ctx: BenchContext) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(
        asyncpg_dsn(ctx.env.database_url), min_size=CLIENTS, max_size=CLIENTS
    )
    try:
        yield pool
    finally:
        await pool.close()


async def compare_summary(
    ctx: BenchContext,
    service: Service,
    *,
    keys: list[str],
    pool: asyncpg.Pool,
    roots: list[str],
    seconds: float,
) -> tuple[Costed, Costed]:
    """Reporting's summary against the baseline for the same roots, in turns."""
    paths = [f"/v1/reports/summary?root={root}&period={PERIOD}" for root in roots]
    await http_load(ctx, service, keys=keys, paths=paths, seconds=0.5)  # warm-up
    await sql_load(ctx, pool, roots=roots, seconds=0.5)
    loads = await turns(
        {
            "service": lambda s: http_load(ctx, service, keys=keys, paths=paths, seconds=s),
            "baseline": lambda s: sql_load(ctx, pool, roots=roots, seconds=s),
        },
        seconds=seconds,
        rounds=2,
    )
    return loads["service"], loads["baseline"]


def counties() -> list[str]:
    return [f"{PROVINCE.province}{c:02d}{d:02d}000000" for c, d in _county_numbers()]


def _county_numbers() -> list[tuple[int, int]]:
    per_city = -(-PROVINCE.counties // PROVINCE.cities)
    return [(i // per_city + 1, i % per_city + 1) for i in range(PROVINCE.counties)]


def cities() -> list[str]:
    return sorted({f"{PROVINCE.province}{c:02d}00000000" for c, _ in _county_numbers()})


async def run(ctx: BenchContext) -> list[Result]:
    seconds = ctx.pick(full=8.0, quick=3.0)
    results: list[Result] = []
    async with running_reporting(ctx) as service, baseline_pool(ctx) as pool:
        keys = await ctx.env.create_keys(role=Role.reader, scope_code=PROVINCE_CODE, count=CLIENTS)
        key = keys[0]
        county_codes = counties()
        await summaries_agree(ctx, service, key=key, pool=pool, root=PROVINCE_CODE)
        await summaries_agree(ctx, service, key=key, pool=pool, root=county_codes[0])
        points = state(ctx).reporting_points
        for label, roots, size in (
            ("province summary", [PROVINCE_CODE], 30_000),
            ("city summary", cities(), 3_000),  # for the growth stage only
            ("county summary", county_codes, 300),
        ):
            ctx.step(f"{label}: {CLIENTS} clients, reporting and the SQL aggregate in turns")
            served, baseline = await compare_summary(
                ctx, service, keys=keys, pool=pool, roots=roots, seconds=2 * seconds
            )
            ctx.step(f"{label}: reporting {served.load.describe('requests/s')}")
            ctx.step(f"{label}: SQL aggregate {baseline.load.describe('requests/s')}")
            points.setdefault("service", {})[size] = served.cpu_per_request_us
            points.setdefault("baseline", {})[size] = baseline.cpu_per_request_us
            if size == 3_000:
                continue
            ctx.latencies += [
                LatencySeries(f"reporting, {label}", served.load.latencies_ms),
                LatencySeries(f"SQL aggregate, {label}", baseline.load.latencies_ms),
            ]
            results += summary_figures(label, served=served, baseline=baseline, small=size < 3_000)
        villages = villages_of(PROVINCE)
        random.Random(6).shuffle(villages)
        statuses = [f"/v1/units/{v}/status?period={PERIOD}" for v in villages]
        # First reads: fewer than the province's villages are read in the time, so each is a
        # database read. Then every village is read once more, as dashboards that polled
        # their units before, and the reads again are timed.
        results += await timed_reads(
            ctx, service, keys, "village status, first read", statuses, seconds, p99=20
        )
        ctx.step(f"village status: each of the {len(statuses):,} villages read")
        await read_each(service, keys=keys, paths=statuses)
        results += await timed_reads(
            ctx, service, keys, "village status, read again", statuses, seconds, p99=20
        )
        eligible = [
            f"/v1/reports/eligible?root={c}&period={PERIOD}&level=village" for c in county_codes
        ]
        await http_load(ctx, service, keys=keys, paths=eligible, seconds=0.5)
        results += await timed_reads(
            ctx,
            service,
            keys,
            "eligible villages of a county (page of 100)",
            eligible,
            seconds,
            p99=50,
        )
    ctx.note(
        f"{NAME}: {CLIENTS} clients (one kept-alive connection and one reader key for the "
        "province each, as dashboards of as many offices) in a closed loop over the rebuilt "
        "province (30,000 villages); county summaries, village statuses and eligible pages "
        "rotate over every county or village. Village statuses are timed twice: first reads "
        "(each village read once in the time, each a database read), then, after every village "
        "was read once, reads again, as dashboards polling their units between changes are "
        "answered from reporting's memory. "
        "No status changes arrive meanwhile, so summaries come from reporting's cache as they "
        "do between changes. The baseline runs the same summary as one SQL aggregate (the "
        "registry walked by a recursive CTE, LEFT JOINed to reporting.unit_status, grouped by "
        "child and level) from 50 clients with a connection each; its answers are checked "
        "against reporting's before timing. The two take turns. CPU per request is the service "
        "process's plus the run database's PostgreSQL backends'."
    )
    return results


async def timed_reads(
    ctx: BenchContext,
    service: Service,
    keys: list[str],
    label: str,
    paths: list[str],
    seconds: float,
    *,
    p99: float | None = None,
) -> list[Result]:
    ctx.step(f"{label}: {CLIENTS} clients")
    costed = await http_load(ctx, service, keys=keys, paths=paths, seconds=seconds)
    ctx.step(f"{label}: {costed.load.describe('requests/s')}")
    ctx.latencies.append(LatencySeries(f"reporting, {label}", costed.load.latencies_ms))
    return [
        Result(f"{NAME}, {label}: requests", costed.load.items_per_second, "requests/s"),
        Result(
            f"{NAME}, {label}: p99",
            costed.load.latency(99),
            "ms",
            target=Target.at_most(p99) if p99 is not None else None,
        ),
    ]


async def read_each(service: Service, *, keys: list[str], paths: list[str]) -> None:
    """Every path read once, by as many clients as there are keys."""
    pending = iter(paths)
    async with client_session(len(keys)) as session:

        async def client(key: str) -> None:
            for path in pending:
                headers = {"Authorization": f"Bearer {key}"}
                async with session.get(service.url + path, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise Refused(response.status)

        await asyncio.gather(*(client(key) for key in keys))


def summary_figures(label: str, *, served: Costed, baseline: Costed, small: bool) -> list[Result]:
    """The summary against the SQL aggregate: by throughput for cities and up, by CPU per
    request for a small subtree, whose aggregate is cheap."""
    return [
        Result(
            f"{NAME}, {label}: requests vs SQL aggregate",
            served.load.items_per_second,
            "requests/s",
            baseline=baseline.load.items_per_second,
            target=None if small else Target.ratio_at_least(10),
        ),
        Result(
            f"{NAME}, {label}: p99",
            served.load.latency(99),
            "ms",
            baseline=baseline.load.latency(99),
            target=Target.at_most(20),
        ),
        Result(
            f"{NAME}, {label}: CPU per request",
            served.cpu_per_request_us,
            "µs",
            baseline=baseline.cpu_per_request_us,
            target=Target.ratio_at_most(0.1) if small else None,
        ),
    ]


STAGE = Stage("reporting", "Reporting reads", run)
