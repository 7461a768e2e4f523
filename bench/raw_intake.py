"""Intake's own insert statement (journal and outbox rows) sent by raw asyncpg connections: the
baseline of what PostgreSQL alone allows, for the intake stages."""

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime

import asyncpg

from bench.environment import DEMO_COUNTY
from bench.events import EventSource
from bench.load import LoadResult, closed_loop
from bench.stage import BenchContext
from services.intake.repository import EventRepository
from shared.db import asyncpg_dsn
from shared.events import FREE_TEXT_FIELDS
from shared.outbox import OutboxMessage


def journal_row(event: dict[str, object], *, county: str) -> tuple[dict[str, object], bytes]:
    """A journal row of the event as intake writes it (its free text kept apart), and its
    outbox message's value."""
    free_text = {name: value for name, value in event.items() if name in FREE_TEXT_FIELDS}
    event = {name: value for name, value in event.items() if name not in FREE_TEXT_FIELDS}
    payload = json.dumps(event)
    now = datetime.now(UTC)
    row = {
        "event_id": uuid.UUID(str(event["event_id"])),
        "type": event["type"],
        "unit_code": event["unit_code"],
        "county_code": county,
        "target_event_id": None,
        "occurred_at": datetime.fromisoformat(str(event["occurred_at"])),
        "payload": payload,
        "content_hash": hashlib.sha256(payload.encode()).hexdigest(),
        "key_id": "bench",
        "correlation_id": uuid.uuid4().hex,
        "accepted_at": now,
        "free_text": json.dumps(free_text) if free_text else None,
    }
    value = json.dumps({"event": event, "accepted_at": now.isoformat(), "key_id": "bench"})
    return row, value.encode()


async def load_raw_statement(
    ctx: BenchContext, *, clients: int, seconds: float, batch_size: int
) -> LoadResult:
    """Intake's insert statement, `batch_size` events per call, from `clients` raw
    connections."""
    source = EventSource(await ctx.env.unit_codes(level="village", within=DEMO_COUNTY))
    county = DEMO_COUNTY
    connections = [await asyncpg.connect(asyncpg_dsn(ctx.env.database_url)) for _ in range(clients)]
    try:

        async def send(worker: int) -> int:
            rows, messages = [], []
            for _ in range(batch_size):
                row, value = journal_row(source.event(), county=county)
                event_id = uuid.UUID(str(row["event_id"]))
                rows.append(row)
                messages.append(
                    (event_id, OutboxMessage(county.encode(), value, {"event_id": str(event_id)}))
                )
            await EventRepository(connections[worker]).insert_new(rows, messages=messages)
            return batch_size

        return await closed_loop(send, concurrency=clients, seconds=seconds)
    finally:
        await asyncio.gather(*(c.close() for c in connections))
