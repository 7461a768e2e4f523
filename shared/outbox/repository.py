"""Writing messages to an outbox and claiming them for publication."""

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
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


@functools.cache
def _append_sql(table: sa.Table) -> str:
    return APPEND_SQL.format(table=f"{table.schema}.{table.name}")


@functools.cache
def _delete_statement(table: sa.Table) -> sa.Delete:
    # `id = ANY(:ids)` takes one array parameter; `IN (...)` would render a thousand each round.
    ids = sa.bindparam("ids", type_=ARRAY(sa.BigInteger))
    return table.delete().where(table.c.id == sa.any_(ids))


class OutboxRepository:
    """One outbox table, in the caller's session: the append (set-based) on the session's
    asyncpg connection, the rest as statements through the session."""

    def __init__(self, session: AsyncSession, table: sa.Table) -> None:
        self.session = session
        self.table = table

    async def add(self, messages: Sequence[OutboxMessage]) -> None:
        """Append messages in the order given (the order they will be published in)."""
        if messages:
            connection = await session_connection(self.session)
            await connection.execute(
                _append_sql(self.table),
                [m.key for m in messages],
                [m.value for m in messages],
                [json.dumps(m.headers) for m in messages],
            )

    async def claim(self, limit: int) -> list[PendingMessage]:
        """The oldest pending messages, for this transaction's relay alone; none while another
        relay holds the outbox (its round would otherwise interleave with ours on a key)."""
        t = self.table
        key = lock_key(LockName.outbox_relay, f"{t.schema}.{t.name}")
        held = await self.session.execute(sa.select(sa.func.pg_try_advisory_xact_lock(key)))
        if not held.scalar_one():
            return []
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
