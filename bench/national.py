"""Stage: the nation. A registry of about 2,800 counties, 40,000 townships and 600,000 villages
(as `sanwu units generate --scale national` makes it) loaded as `sanwu units load` loads it;
five million events rebuilt by evaluation against the raw consumer in the same run; every
service running on that registry and read model: reporting's start-up, the national and a
provincial summary under 50 clients, and the resident memory of each service process.

It runs after every stage that needs the demo registry alone: the registry stays national
afterwards (the disputes stage, after it, works in the demo county, whose codes it keeps)."""

import random
import time
from collections.abc import Iterator
from pathlib import Path

from bench.console import load_overview
from bench.evaluation_rebuild import measure, mib
from bench.events import EventSource
from bench.intake_single import INTAKE_APP
from bench.load import LoadResult, Refused, client_session, closed_loop
from bench.pipeline import live_prefix, wait_for_statuses
from bench.report import Result, Target
from bench.reporting import EVALUATION_APP, PERIOD, REPORTING_APP, http_load
from bench.services import Service, memory_mib
from bench.stage import BenchContext, Stage
from shared.access.models import Role
from shared.registry.generator import NationShape, Row, generate_nation, write_csv

NAME = "national"
NATION = NationShape()
# Guangdong: counties, and two cities without counties (东莞, 中山).
PROVINCE_CODE = "440000000000"
CLIENTS = 50
APPLICATIONS_APP = "services.applications.main:create_app"
CONSOLE_APP = "services.console.main:create_app"
MEMORY_LIMIT_MIB = 1024  # a rebuild's
SERVICE_MEMORY_MIB = 384


def national_registry(path: Path) -> list[str]:
    """Write the national registry's CSV; returns its village codes."""
    villages: list[str] = []

    def rows() -> Iterator[Row]:
        for row in generate_nation(NATION):
            if row[2] == "village":
                villages.append(row[0])
            yield row

    with path.open("w", encoding="utf-8") as handle:
        write_csv(rows(), handle)
    return villages


async def load_nation(ctx: BenchContext) -> tuple[list[str], float]:
    """Load the national registry; returns its villages and the seconds the load took."""
    path = ctx.env.work_dir / "nation.csv"
    villages = national_registry(path)
    ctx.step(f"national registry: {len(villages):,} villages; loading")
    started = time.perf_counter()
    await ctx.env.load_registry(path)
    seconds = time.perf_counter() - started
    ctx.step(f"loaded in {seconds:.1f} s")
    return villages, seconds


async def post_events(
    intake: Service, *, key: str, villages: list[str], seconds: float
) -> LoadResult:
    """Eight desks posting visits to villages all over the nation."""
    sample = random.Random(15).sample(villages, 5_000)
    source = EventSource(sample)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with client_session(8) as session:

        async def send(_: int) -> int:
            async with session.post(
                f"{intake.url}/v1/events", data=source.body(), headers=headers
            ) as response:
                await response.read()
                if response.status != 202:
                    raise Refused(response.status)
            return 1

        return await closed_loop(send, concurrency=8, seconds=seconds, server=intake)


async def summary_results(
    ctx: BenchContext, reporting: Service, *, label: str, keys: list[str], path: str
) -> list[Result]:
    """The first (uncached) summary, then CLIENTS clients in a closed loop."""
    async with client_session(1) as session:
        started = time.perf_counter()
        async with session.get(
            reporting.url + path, headers={"Authorization": f"Bearer {keys[0]}"}
        ) as response:
            await response.read()
            if response.status != 200:
                raise Refused(response.status)
        first_ms = (time.perf_counter() - started) * 1000
    seconds = ctx.pick(full=10.0, quick=3.0)
    ctx.step(f"{label}: first in {first_ms:,.0f} ms; {CLIENTS} clients for {seconds:g} s")
    costed = await http_load(ctx, reporting, keys=keys, paths=[path], seconds=seconds)
    ctx.step(f"{label}: {costed.load.describe('requests/s')}")
    return [
        Result(f"{NAME}, {label}: first, uncached", first_ms, "ms"),
        Result(f"{NAME}, {label}: requests", costed.load.items_per_second, "requests/s"),
        Result(
            f"{NAME}, {label}: p99, {CLIENTS} clients",
            costed.load.latency(99),
            "ms",
            target=Target.at_most(20),
        ),
        Result(f"{NAME}, {label}: CPU per request", costed.cpu_per_request_us, "µs"),
    ]


async def run(ctx: BenchContext) -> list[Result]:
    count = ctx.pick(full=5_000_000, quick=200_000)
    villages, load_seconds = await load_nation(ctx)
    results = [
        Result(f"{NAME}: units load, {len(villages):,} villages", load_seconds, "s",
               target=Target.at_most(60)),
    ]  # fmt: skip
    measured = await measure(ctx, count, villages)
    results += [
        Result(
            f"{NAME}: rebuild of {count:,} events",
            measured.rebuild_rate,
            "events/s",
            target=Target.at_least(10_000),
        ),
        Result(
            f"{NAME}: rebuild vs raw consumer + decode",
            measured.rebuild_rate,
            "events/s",
            baseline=measured.raw_rate,
            target=Target.ratio_at_least(0.35),
        ),
        Result(
            f"{NAME}: rebuild's peak resident memory",
            mib(measured.report.peak_resident),
            "MiB",
            target=Target.at_most(MEMORY_LIMIT_MIB),
        ),
        Result(
            f"{NAME}: rebuild's largest reader's peak resident memory",
            mib(measured.report.readers_peak_resident),
            "MiB",
            target=Target.at_most(MEMORY_LIMIT_MIB),
        ),
    ]
    prefix = await live_prefix(ctx)
    topics = {"SANWU_TOPIC_PREFIX": prefix}
    readers = await ctx.env.create_keys(role=Role.reader, scope_code=None, count=CLIENTS)
    [desk] = await ctx.env.create_keys(role=Role.desk, scope_code=None, count=1)
    [provincial] = await ctx.env.create_keys(role=Role.reader, scope_code=PROVINCE_CODE, count=1)
    async with (
        ctx.service("reporting", REPORTING_APP, **topics) as reporting,
        ctx.service("evaluation", EVALUATION_APP, **topics) as evaluation,
    ):
        started = time.perf_counter()
        await wait_for_statuses(ctx, prefix=prefix, timeout=3600)
        applied = time.perf_counter() - started
        ctx.step(f"the rebuild's changes reached reporting in {applied:.0f} s")
        started = time.perf_counter()
        async with ctx.service(
            "reporting-2", REPORTING_APP, SANWU_REPORTING_RUN_CONSUMER="false", **topics
        ) as second:
            start_seconds = time.perf_counter() - started
            ctx.step(f"a second reporting instance ready in {start_seconds:.1f} s")
            results.append(
                Result(f"{NAME}: reporting start-up, national read model", start_seconds, "s")
            )
            for label, path in (
                ("national summary", f"/v1/reports/summary?period={PERIOD}"),
                (
                    "provincial summary",
                    f"/v1/reports/summary?root={PROVINCE_CODE}&period={PERIOD}",
                ),
            ):
                results += await summary_results(ctx, second, label=label, keys=readers, path=path)
            services = {"reporting": reporting, "reporting-2": second, "evaluation": evaluation}
            results += await every_service_working(
                ctx, services, topics=topics, desk=desk, reader=provincial, villages=villages
            )
    ctx.note(
        f"{NAME}: the registry of `sanwu units generate --scale national` ({len(villages):,} "
        f"villages), loaded in one transaction as `sanwu units load` does; {count:,} events "
        "generated as in the evaluation stage over every village of the nation, rebuilt against "
        "the raw consumer in the same run (in a process of its own, as in the evaluation stage: "
        "the rebuild's and its largest reader's peaks are theirs, not the bench's); reporting "
        "and evaluation then relay and apply the "
        "rebuild's changes. A second reporting instance's start (process start to readiness, "
        "with the national registry and read model) is the start-up time; the summaries are "
        f"served by it to {CLIENTS} national readers. Memory is each process's resident set "
        "(VmRSS) and peak (VmHWM) after intake took visits from desks all over the nation, "
        "evaluation evaluated them, reporting applied them and the console showed a province."
    )
    return results


async def every_service_working(
    ctx: BenchContext,
    services: dict[str, Service],
    *,
    topics: dict[str, str],
    desk: str,
    reader: str,
    villages: list[str],
) -> list[Result]:
    """Start intake, applications and the console beside `services`, give each some work, and
    measure every process's memory."""
    seconds = ctx.pick(full=10.0, quick=3.0)
    reporting = services["reporting"]
    async with (
        ctx.service("intake", INTAKE_APP, SANWU_INTAKE_RUN_RELAY="true", **topics) as intake,
        ctx.service("applications", APPLICATIONS_APP, **topics) as applications,
        ctx.service(
            "console",
            CONSOLE_APP,
            SANWU_REPORTING_URL=reporting.url,
            SANWU_INTAKE_URL=intake.url,
            SANWU_APPLICATIONS_URL=applications.url,
            SANWU_EVALUATION_URL=services["evaluation"].url,
        ) as console,
    ):
        posted = await post_events(intake, key=desk, villages=villages, seconds=seconds)
        ctx.step(f"desks all over the nation: {posted.describe()}")
        await wait_for_statuses(ctx, prefix=topics["SANWU_TOPIC_PREFIX"])
        pages = await load_overview(console, keys=[reader], seconds=seconds, unit=PROVINCE_CODE)
        ctx.step(f"console, province overview: {pages.describe('pages/s')}")
        every = services | {"intake": intake, "applications": applications, "console": console}
        results = []
        for name, service in every.items():
            now, peak = memory_mib(service)
            ctx.step(f"{name}: resident {now:,.0f} MiB, peak {peak:,.0f} MiB")
            results.append(
                Result(
                    f"{NAME}: {name} peak resident memory",
                    peak,
                    "MiB",
                    target=Target.at_most(SERVICE_MEMORY_MIB),
                )
            )
        return results


STAGE = Stage("national", "National size", run)
