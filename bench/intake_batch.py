"""Stage 2: intake accepting batches of 1,000 events; an event counts once its batch answered
with it "accepted", which means committed with its outbox row."""

import json

from bench.environment import DEMO_COUNTY
from bench.events import EventSource
from bench.load import LoadResult, Refused, client_session, closed_loop, interleaved
from bench.raw_intake import load_raw_statement
from bench.report import LatencySeries, Result, Target
from bench.services import Service
from bench.stage import BenchContext, Stage
from shared.access.models import Role

INTAKE_APP = "services.intake.main:create_app"
BATCH_SIZE = 1000
UNLIMITED = "1000000000/second"
CLIENTS = 4  # enough to keep one server process busy while PostgreSQL commits
NAME = "intake batches of 1000"


async def load_batches(
    ctx: BenchContext,
    service: Service,
    *,
    key: str,
    seconds: float,
    clients: int = CLIENTS,
    warmup_seconds: float = 0.0,
) -> LoadResult:
    source = EventSource(await ctx.env.unit_codes(level="village", within=DEMO_COUNTY))
    url = f"{service.url}/v1/events/batch"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with client_session(clients) as session:

        async def send(_: int) -> int:
            body = source.batch_body(BATCH_SIZE)
            async with session.post(url, data=body, headers=headers) as response:
                answer = await response.read()
                if response.status != 200:
                    raise Refused(response.status)
            results = json.loads(answer)["results"]
            return sum(1 for r in results if r["status"] == "accepted")

        return await closed_loop(
            send,
            concurrency=clients,
            seconds=seconds,
            warmup_seconds=warmup_seconds,
            server=service,
        )


async def run(ctx: BenchContext) -> list[Result]:
    seconds = ctx.pick(full=15.0, quick=5.0)
    (key,) = await ctx.env.create_keys(role=Role.desk, scope_code=DEMO_COUNTY, count=1)
    ctx.step(f"{CLIENTS} clients posting batches of {BATCH_SIZE} for {seconds:g} s")
    # The per-key limit counts a batch as its events (2,000 a second by default): a deployment
    # sets it for its bulk senders. Here it must not bind, or the stage measures the limit.
    async with ctx.service(
        "intake", INTAKE_APP, SANWU_INTAKE_RUN_RELAY="false", SANWU_RATE_LIMIT=UNLIMITED
    ) as service:
        await load_batches(ctx, service, key=key, seconds=ctx.pick(full=2.0, quick=1.0))
        loads = await interleaved(
            {
                "intake": lambda s: load_batches(ctx, service, key=key, seconds=s),
                "raw": lambda s: load_raw_statement(
                    ctx, clients=CLIENTS, seconds=s, batch_size=BATCH_SIZE
                ),
            },
            seconds=seconds,
            rounds=ctx.pick(full=3, quick=2),
        )
    load, raw = loads["intake"], loads["raw"]
    ctx.step(f"intake (relay off): {load.describe()}")
    ctx.step(f"intake's statement, {BATCH_SIZE} events a call, raw connections: {raw.describe()}")
    ctx.latencies.append(LatencySeries("intake, batches of 1000", load.latencies_ms))
    ctx.note(
        f"{NAME}: {CLIENTS} clients, each posting its next batch when the last one is answered "
        "(intake's per-key rate limit raised so that it does not bind); "
        "an event counts when its batch answered it `accepted` (committed with its outbox row). "
        "The baseline sends intake's own insert of the same journal and outbox rows, "
        f"{BATCH_SIZE} a call, from {CLIENTS} raw asyncpg connections, in turns with intake."
    )
    return [
        Result(
            f"{NAME}: accepted", load.items_per_second, "events/s", target=Target.at_least(20_000)
        ),
        Result(
            f"{NAME}: accepted vs intake's statement alone",
            load.items_per_second,
            "events/s",
            baseline=raw.items_per_second,
            target=Target.ratio_at_least(0.5),
        ),
        Result(f"{NAME}: server CPU per event", load.server_cpu_per_item_us, "µs"),
        Result(f"{NAME}: latency p50 per batch", load.latency(50), "ms"),
        Result(f"{NAME}: latency p99 per batch", load.latency(99), "ms"),
    ]


STAGE = Stage("intake-batch", "Intake, batches of 1000", run)
