"""Writing messages to an outbox and claiming them for publication."""

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.locks import LockName, lock_key
from shared.repository import session_connection


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


# Arrays rather than one VALUES row per message: a single fixed statement whatever the count,
# prepared once per connection; ids follow the given order.
APPEND_SQL = """
    INSERT INTO {table} (key, value, headers)
    SELECT key, value, headers::jsonb
      FROM unnest($1::bytea[], $2::bytea[], $3::text[])
           WITH ORDINALITY AS message (key, value, headers, position)
     ORDER BY position
"""


# A relay's round reads and deletes thousands of rows: on asyncpg, with the headers as text
# parsed by orjson, rather than through the session's row processing and JSON codec, which took
# a quarter of a round's time.
CLAIM_SQL = """
    SELECT id, key, value, headers::text FROM {table} ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
TRY_LOCK_SQL = "SELECT pg_try_advisory_xact_lock($1)"
# `id = ANY($1)` takes one array parameter; `IN (...)` would render a thousand each round.
DELETE_SQL = "DELETE FROM {table} WHERE id = ANY($1::bigint[])"


@functools.cache
def _sql(template: str, table: sa.Table) -> str:
    return template.format(table=f"{table.schema}.{table.name}")


class OutboxRepository:
    """One outbox table, in the caller's session: the pending count as a statement through
    the session, the rest on the session's asyncpg connection."""

    def __init__(self, session: AsyncSession, table: sa.Table) -> None:
        self.session = session
        self.table = table

    async def add(self, messages: Sequence[OutboxMessage]) -> None:
        """Append messages in the order given (the order they will be published in)."""
        if messages:
            connection = await session_connection(self.session)
            await connection.execute(
                _sql(APPEND_SQL, self.table),
                [m.key for m in messages],
                [m.value for m in messages],
                [json.dumps(m.headers) for m in messages],
            )

    async def claim(self, limit: int) -> list[PendingMessage]:
        """The oldest pending messages, for this transaction's relay alone; none while another
        relay holds the outbox (its round would otherwise interleave with ours on a key)."""
        t = self.table
        connection = await session_connection(self.session)
        lock = lock_key(LockName.outbox_relay, f"{t.schema}.{t.name}")
        if not await connection.fetchval(TRY_LOCK_SQL, lock):
            return []
        rows = await connection.fetch(_sql(CLAIM_SQL, t), limit)
        return [
            PendingMessage(message_id, key, value, orjson.loads(headers))
            for message_id, key, value, headers in rows
        ]

    async def mark_sent(self, ids: Sequence[int]) -> None:
        connection = await session_connection(self.session)
        await connection.execute(_sql(DELETE_SQL, self.table), list(ids))

    async def pending_count(self) -> int:
        count = sa.select(sa.func.count()).select_from(self.table)
        return int((await self.session.execute(count)).scalar_one())
