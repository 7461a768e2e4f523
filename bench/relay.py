"""Stage 3: the outbox relay draining intake's outbox to Kafka, against a raw aiokafka producer
with the same settings (acks=all, idempotent) sending the same messages.

The outbox is filled through intake itself (batches posted with its relay off), so the messages
are exactly what production publishes. Both sides are timed from starting their producer to the
last acknowledgement, in this process, on the same event loop.
"""

import asyncio
import math
import time

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from bench.intake_batch import BATCH_SIZE, INTAKE_APP, load_batches
from bench.report import Result, Target
from bench.stage import BenchContext, Stage
from services.intake.config import IntakeSettings
from services.intake.main import relay as intake_relay
from shared import kafka
from shared.access.models import Role
from shared.db import Database

Message = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers
NAME = "relay outbox → Kafka"


async def run(ctx: BenchContext) -> list[Result]:
    count = ctx.pick(full=100_000, quick=20_000)
    await fill_outbox(ctx, count)
    messages = await outbox_messages(ctx.env.db)
    ctx.step(f"outbox holds {len(messages):,} messages")
    settings = ctx.env.settings_as(IntakeSettings, intake_run_relay=False)

    # The raw producer runs before and after the relay, so the baseline brackets it in time.
    topic = await ctx.env.scratch_topic("relay-baseline")
    raw_seconds = await send_raw(settings, topic=topic, messages=messages)
    ctx.step(f"raw producer: {len(messages) / raw_seconds:,.0f} events/s ({raw_seconds:.2f} s)")

    before = await ctx.env.topic_size(settings.events_topic)
    relay_seconds = await drain_with_relay(settings, len(messages))
    delivered = await ctx.env.topic_size(settings.events_topic) - before
    ctx.step(f"relay: {len(messages) / relay_seconds:,.0f} events/s ({relay_seconds:.2f} s)")
    if delivered != len(messages):
        raise RuntimeError(f"the relay put {delivered} messages on the topic, not {len(messages)}")

    ctx.note(
        f"{NAME}: {len(messages):,} messages that intake itself put in its outbox; the relay and "
        "a raw producer with the same settings each timed from producer start to the last ack; "
        "the baseline is the raw producer's mean over a run before and one after the relay."
    )
    raw_again = await send_raw(settings, topic=topic, messages=messages)
    ctx.step(f"raw producer again: {len(messages) / raw_again:,.0f} events/s ({raw_again:.2f} s)")
    return [
        Result(
            f"{NAME}: published",
            len(messages) / relay_seconds,
            "events/s",
            baseline=2 * len(messages) / (raw_seconds + raw_again),
            target=Target.ratio_at_least(0.5),
        )
    ]


async def fill_outbox(ctx: BenchContext, count: int) -> None:
    """Empty intake's outbox, then have intake (relay off) accept `count` new events."""
    async with ctx.env.db.engine.begin() as connection:
        await connection.execute(sa.text("TRUNCATE intake.outbox"))
    (key,) = await ctx.env.create_keys(role=Role.desk, scope_code=None, count=1)
    batches = math.ceil(count / BATCH_SIZE)
    ctx.step(f"filling the outbox with {batches * BATCH_SIZE:,} events through intake")
    async with ctx.service("intake", INTAKE_APP, SANWU_INTAKE_RUN_RELAY="false") as service:
        while await outbox_size(ctx.env.db) < count:
            await load_batches(ctx, service, key=key, seconds=0.5, clients=2)
    async with ctx.env.db.engine.begin() as connection:
        await connection.execute(sa.text("ANALYZE intake.outbox"))


async def outbox_size(db: Database) -> int:
    async with db.engine.connect() as connection:
        return int(
            (await connection.execute(sa.text("SELECT count(*) FROM intake.outbox"))).scalar_one()
        )


async def outbox_messages(db: Database) -> list[Message]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.text("SELECT key, value, headers FROM intake.outbox ORDER BY id")
        )
        return [
            (row.key, row.value, [(k, v.encode()) for k, v in row.headers.items()]) for row in rows
        ]


async def send_raw(settings: IntakeSettings, *, topic: str, messages: list[Message]) -> float:
    """Seconds a bare producer takes to send every message and have every ack."""
    started = time.perf_counter()
    producer: AIOKafkaProducer = kafka.producer(settings)
    await producer.start()
    try:
        deliveries = [
            await producer.send(topic, value=value, key=key, headers=headers)
            for key, value, headers in messages
        ]
        await asyncio.gather(*deliveries)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def drain_with_relay(settings: IntakeSettings, count: int, *, timeout: float = 300) -> float:
    """Seconds intake's `OutboxRelay` takes to publish `count` messages, read from its own
    published counter so that nothing else queries the outbox meanwhile."""
    db = Database.from_settings(settings, pool_size=2)  # as `sanwu intake relay` has
    relay = intake_relay(db, settings)
    labels = {"outbox": relay.name}
    published_before = REGISTRY.get_sample_value("sanwu_outbox_published_total", labels) or 0.0
    started = time.perf_counter()
    task = asyncio.create_task(relay.run())
    try:
        while (
            REGISTRY.get_sample_value("sanwu_outbox_published_total", labels) or 0.0
        ) - published_before < count:
            if task.done():
                task.result()
                raise RuntimeError("the relay stopped before the outbox was empty")
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"the relay did not drain the outbox in {timeout:.0f} s")
            await asyncio.sleep(0.005)
        return time.perf_counter() - started
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await db.dispose()


STAGE = Stage("relay", "Relay, outbox to Kafka", run)
