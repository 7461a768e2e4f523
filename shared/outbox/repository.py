"""Writing messages to an outbox and claiming them for publication."""

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
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


# A relay's round takes thousands of rows: on asyncpg, with the headers as text parsed by
# orjson, rather than through the session's row processing and JSON codec, which took a quarter
# of a round's time. The rows are deleted as they are taken (one statement instead of a read and
# a delete): they are gone only if the round's transaction commits, after every acknowledgement.
# The relay's lock is tried once, in the same statement; without it nothing is taken. The ids
# taken are an array, so that the delete finds them by the primary key rather than by a hash
# join over the whole table (an outbox holds many dead rows between two vacuums).
TAKE_SQL = """
    WITH relay AS (SELECT pg_try_advisory_xact_lock($2) AS holds),
    taken AS (
        DELETE FROM {table} WHERE id = ANY(ARRAY(
            SELECT id FROM {table} WHERE (SELECT holds FROM relay)
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
        ))
        RETURNING id, key, value, headers::text
    )
    SELECT * FROM taken ORDER BY id
"""


@functools.cache
def _sql(template: str, table: sa.Table) -> str:
    return template.format(table=f"{table.schema}.{table.name}")


async def append(
    connection: asyncpg.Connection, table: sa.Table, messages: Sequence[OutboxMessage]
) -> None:
    """`OutboxRepository.add` on a connection already in the caller's transaction."""
    await connection.execute(
        _sql(APPEND_SQL, table),
        [m.key for m in messages],
        [m.value for m in messages],
        [json.dumps(m.headers) for m in messages],
    )


class OutboxRepository:
    """One outbox table, in the caller's session: the pending count as a statement through
    the session, the rest on the session's asyncpg connection."""

    def __init__(self, session: AsyncSession, table: sa.Table) -> None:
        self.session = session
        self.table = table

    async def add(self, messages: Sequence[OutboxMessage]) -> None:
        """Append messages in the order given (the order they will be published in)."""
        if messages:
            await append(await session_connection(self.session), self.table, messages)

    async def take(self, limit: int) -> list[PendingMessage]:
        """The oldest pending messages, out of the outbox for this transaction's relay alone
        (back in it if the transaction does not commit); none while another relay holds the
        outbox (its round would otherwise interleave with ours on a key)."""
        t = self.table
        connection = await session_connection(self.session)
        lock = lock_key(LockName.outbox_relay, f"{t.schema}.{t.name}")
        rows = await connection.fetch(_sql(TAKE_SQL, t), limit, lock)
        return [
            PendingMessage(message_id, key, value, orjson.loads(headers))
            for message_id, key, value, headers in rows
        ]

    async def pending_count(self) -> int:
        count = sa.select(sa.func.count()).select_from(self.table)
        return int((await self.session.execute(count)).scalar_one())
