"""Stage 1: intake accepting single events, against two baselines under the same load: a bare
FastAPI app that validates the same model and does no I/O (served by uvicorn with the same
settings), and intake's own statement (journal and outbox row, one event per call) sent by as
many raw asyncpg connections as there are clients: what PostgreSQL alone allows."""

import math

from bench.environment import DEMO_COUNTY
from bench.events import EventSource
from bench.load import LoadResult, Refused, client_session, closed_loop, interleaved
from bench.raw_intake import load_raw_statement
from bench.report import LatencySeries, Result, Target
from bench.services import Service
from bench.stage import BenchContext, Stage
from shared.access.models import Role

INTAKE_APP = "services.intake.main:create_app"
BASELINE_APP = "bench.baseline_app:create_app"
NAME = "intake single events"


async def load_single_events(
    ctx: BenchContext,
    service: Service,
    *,
    keys: list[str],
    seconds: float,
    warmup_seconds: float = 0.0,
) -> LoadResult:
    """One client per key, each posting one new event at a time to `service`."""
    source = EventSource(await ctx.env.unit_codes(level="village", within=DEMO_COUNTY))
    url = f"{service.url}/v1/events"
    headers = [
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"} for key in keys
    ]
    async with client_session(len(keys)) as session:

        async def send(worker: int) -> int:
            async with session.post(url, data=source.body(), headers=headers[worker]) as response:
                await response.read()
                if response.status != 202:
                    raise Refused(response.status)
            return 1

        return await closed_loop(
            send,
            concurrency=len(keys),
            seconds=seconds,
            warmup_seconds=warmup_seconds,
            server=service,
        )


async def run(ctx: BenchContext) -> list[Result]:
    seconds = ctx.pick(full=20.0, quick=6.0)
    rounds = ctx.pick(full=4, quick=2)
    warmup = ctx.pick(full=2.0, quick=1.0)
    keys = await ctx.env.create_keys(role=Role.desk, scope_code=DEMO_COUNTY, count=ctx.clients)
    ctx.step(
        f"{ctx.clients} clients (one desk key each), {seconds:g} s per service, "
        f"in {rounds} turns each"
    )
    async with (
        ctx.service("bare-fastapi", BASELINE_APP) as bare_service,
        ctx.service("intake", INTAKE_APP, SANWU_INTAKE_RUN_RELAY="false") as intake_service,
    ):
        for service in (bare_service, intake_service):
            await load_single_events(ctx, service, keys=keys, seconds=warmup)
        loads = await interleaved(
            {
                "bare": lambda s: load_single_events(ctx, bare_service, keys=keys, seconds=s),
                "intake": lambda s: load_single_events(ctx, intake_service, keys=keys, seconds=s),
                "raw": lambda s: load_raw_statement(
                    ctx, clients=ctx.clients, seconds=s, batch_size=1
                ),
            },
            seconds=seconds,
            rounds=rounds,
        )
    bare, intake, raw = loads["bare"], loads["intake"], loads["raw"]
    ctx.step(f"bare FastAPI: {bare.describe()}")
    ctx.step(f"intake (relay off): {intake.describe()}")
    ctx.step(f"intake's statement from {ctx.clients} raw connections: {raw.describe()}")

    ctx.latencies += [
        LatencySeries("bare FastAPI, single events", bare.latencies_ms),
        LatencySeries("intake, single events", intake.latencies_ms),
    ]
    ctx.note(
        f"{NAME}: intake runs with its relay off (SANWU_INTAKE_RUN_RELAY=false), so the figure "
        "is acceptance alone: validation, key, registry, journal and outbox row committed. "
        "Intake, the bare app and the raw statement take turns under the same load, so all "
        "see the same machine. The raw statement is intake's own insert (journal and outbox "
        "row, one event per call) from as many asyncpg connections as there are clients."
    )
    return figures(intake, bare, raw)


def figures(intake: LoadResult, bare: LoadResult, raw: LoadResult) -> list[Result]:
    rate, bare_rate = intake.items_per_second, bare.items_per_second
    return [
        Result(f"{NAME}: accepted", rate, "events/s", target=Target.at_least(1500)),
        Result(
            f"{NAME}: accepted vs bare FastAPI",
            rate,
            "events/s",
            baseline=bare_rate,
            target=Target.ratio_at_least(0.6),
        ),
        Result(
            f"{NAME}: accepted vs intake's statement alone",
            rate,
            "events/s",
            baseline=raw.items_per_second,
            target=Target.ratio_at_least(0.35),
        ),
        Result(f"{NAME}: latency p50", intake.latency(50), "ms", baseline=bare.latency(50)),
        Result(
            f"{NAME}: latency p99",
            intake.latency(99),
            "ms",
            baseline=bare.latency(99),
            target=Target.at_most(50),
        ),
        Result(
            f"{NAME}: server CPU per event",
            intake.server_cpu_per_item_us,
            "µs",
            baseline=bare.server_cpu_per_item_us,
            target=Target.ratio_at_most(1.5),
        ),
        Result(
            f"{NAME}: load generator CPU",
            intake.cpu.client if intake.cpu else math.nan,
            "cores",
            baseline=bare.cpu.client if bare.cpu else None,
        ),
    ]


STAGE = Stage("intake-single", "Intake, single events", run)
