"""The transactional outbox, shared by every service that publishes to Kafka.

A service writes its messages into `<schema>.outbox` in the same transaction as the state they
describe. `OutboxRelay` publishes them oldest first with an idempotent producer and deletes what
Kafka acknowledged, one database transaction per round. A relay that dies after the ack but
before the delete publishes those rows again on restart: messages carry ids that consumers
de-duplicate on. Kafka being down only delays delivery.
"""

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import sqlalchemy as sa
import structlog
from aiokafka import AIOKafkaProducer
from alembic import op
from prometheus_client import Counter, Gauge
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from shared import kafka
from shared.config import Settings
from shared.db import Database, asyncpg_dsn

log = structlog.get_logger(__name__)
MAX_BACKOFF = 5.0

published_total = Counter("sanwu_outbox_published_total", "Outbox messages published", ["outbox"])
relay_errors_total = Counter("sanwu_outbox_relay_errors_total", "Relay rounds failed", ["outbox"])
pending_gauge = Gauge("sanwu_outbox_pending", "Outbox messages not yet published", ["outbox"])


def outbox_table(schema: str, metadata: sa.MetaData | None = None) -> sa.Table:
    return sa.Table(
        "outbox",
        metadata or sa.MetaData(),
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("key", sa.LargeBinary, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("headers", JSONB, nullable=False, server_default="{}"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=schema,
    )


def channel_of(schema: str) -> str:
    return f"{schema}_outbox"


def create_outbox(schema: str) -> None:
    """Migration step: the outbox table and a trigger that wakes relays when rows commit."""
    op.create_table(
        "outbox",
        *[column._copy() for column in outbox_table(schema).columns],
        schema=schema,
    )
    create_wake_trigger(schema)


def create_wake_trigger(schema: str) -> None:
    """Migration step: NOTIFY relays of other processes whenever outbox rows commit. Worth it
    for outboxes written in batches; a NOTIFY serialises the commits that send it, so an
    outbox written one row per transaction does without and wakes its relay in process."""
    op.execute(
        f"""
        CREATE FUNCTION {schema}.notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('{channel_of(schema)}', ''); RETURN NULL; END $$
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER outbox_notify AFTER INSERT ON {schema}.outbox
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_outbox()
        """
    )


def drop_wake_trigger(schema: str) -> None:
    op.execute(f"DROP TRIGGER outbox_notify ON {schema}.outbox")
    op.execute(f"DROP FUNCTION {schema}.notify_outbox()")


def drop_outbox(schema: str) -> None:
    op.execute(f"DROP TRIGGER IF EXISTS outbox_notify ON {schema}.outbox")
    op.execute(f"DROP FUNCTION IF EXISTS {schema}.notify_outbox()")
    op.drop_table("outbox", schema=schema)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    key: bytes
    value: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class PendingMessage:
    id: int
    key: bytes
    value: bytes
    headers: dict[str, str]


@functools.cache
def _append_statement(table: sa.Table) -> sa.TextClause:
    # Arrays rather than one VALUES row per message: a single fixed statement whatever the
    # count, prepared once per connection; ids follow the given order.
    return sa.text(
        f"""
        INSERT INTO {table.schema}.{table.name} (key, value, headers)
        SELECT key, value, headers::jsonb
          FROM unnest(CAST(:keys AS bytea[]), CAST(:values AS bytea[]),
                      CAST(:headers AS text[]))
               WITH ORDINALITY AS message (key, value, headers, position)
         ORDER BY position
        """
    )


@functools.cache
def _delete_statement(table: sa.Table) -> sa.Delete:
    # `id = ANY(:ids)` takes one array parameter; `IN (...)` would render a thousand each round.
    ids = sa.bindparam("ids", type_=ARRAY(sa.BigInteger))
    return table.delete().where(table.c.id == sa.any_(ids))


class OutboxRepository:
    def __init__(self, session: AsyncSession, table: sa.Table) -> None:
        self.session = session
        self.table = table

    async def add(self, messages: Sequence[OutboxMessage]) -> None:
        """Append messages in the order given (the order they will be published in)."""
        if messages:
            await self.session.execute(
                _append_statement(self.table),
                {
                    "keys": [m.key for m in messages],
                    "values": [m.value for m in messages],
                    "headers": [json.dumps(m.headers) for m in messages],
                },
            )

    async def claim(self, limit: int) -> list[PendingMessage]:
        """The oldest pending messages, locked against other relays until this transaction ends."""
        t = self.table
        result = await self.session.execute(
            sa.select(t.c.id, t.c.key, t.c.value, t.c.headers)
            .order_by(t.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [PendingMessage(*row) for row in result]

    async def mark_sent(self, ids: Sequence[int]) -> None:
        await self.session.execute(_delete_statement(self.table), {"ids": list(ids)})

    async def pending_count(self) -> int:
        count = sa.select(sa.func.count()).select_from(self.table)
        return int((await self.session.execute(count)).scalar_one())


class OutboxRelay:
    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        table: sa.Table,
        topic: str,
        batch_size: int = 1000,
        idle_poll_seconds: float = 1.0,
        notified: bool = True,
        producer_options: dict[str, Any] | None = None,
    ) -> None:
        """`notified`: the outbox has a wake trigger (see create_wake_trigger) to LISTEN for;
        without one the relay is woken by `wake()` in process and otherwise polls."""
        self.db = db
        self.settings = settings
        self.table = table
        self.topic = topic
        self.batch_size = batch_size
        self.idle_poll_seconds = idle_poll_seconds
        self.notified = notified
        self.name = str(table.schema)
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._producer = kafka.LazyProducer(settings, **(producer_options or {}))

    async def publish_pending(self, producer: AIOKafkaProducer) -> int:
        """One round: claim, publish and wait for every ack, then mark sent. Returns the count."""
        async with self.db.session() as session:
            outbox = OutboxRepository(session, self.table)
            pending = await outbox.claim(self.batch_size)
            if not pending:
                return 0
            await self.publish(producer, pending)
            await outbox.mark_sent([m.id for m in pending])
        published_total.labels(self.name).inc(len(pending))
        return len(pending)

    async def publish(self, producer: AIOKafkaProducer, messages: list[PendingMessage]) -> None:
        deliveries = [
            await producer.send(
                self.topic,
                value=m.value,
                key=m.key,
                headers=[(k, v.encode()) for k, v in m.headers.items()],
            )
            for m in messages
        ]
        await asyncio.gather(*deliveries)

    async def run(self) -> None:
        """Until cancelled: publish whenever the outbox has rows, back off while Kafka is away."""
        backoff = 0.2
        last_gauge = 0.0
        try:
            while True:
                await self._listen()
                try:
                    producer = await self._producer.get()
                    published = await self.publish_pending(producer)
                    backoff = 0.2
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    relay_errors_total.labels(self.name).inc()
                    log.warning(
                        "relay_round_failed", outbox=self.name, error=repr(exc), retry_in=backoff
                    )
                    await self._producer.drop()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                if time.monotonic() - last_gauge > 5:
                    last_gauge = time.monotonic()
                    await self._update_gauge()
                if published < self.batch_size:
                    await self._wait_for_work()
        finally:
            await self._producer.drop()
            await self._unlisten()

    def wake(self) -> None:
        """Rows were committed to the outbox in this process: publish them now."""
        self._wake.set()

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.idle_poll_seconds)
        self._wake.clear()

    async def _listen(self) -> None:
        """LISTEN for committed outbox rows; without it the relay simply polls."""
        if not self.notified:
            return
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            dsn = asyncpg_dsn(self.settings.database_url)
            self._listener = await asyncpg.connect(dsn, timeout=3)
            await self._listener.add_listener(channel_of(self.name), lambda *_: self._wake.set())
        except (OSError, asyncpg.PostgresError, TimeoutError):
            self._listener = None

    async def _unlisten(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    async def _update_gauge(self) -> None:
        with contextlib.suppress(Exception):
            async with self.db.session() as session:
                count = await OutboxRepository(session, self.table).pending_count()
                pending_gauge.labels(self.name).set(count)
