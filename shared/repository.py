"""The one way every service builds a repository.

A repository holds the SQL of one store and runs it on one asyncpg connection:

- `await XRepository.from_session(session)` inside a unit of work (`Database.session()`,
  `SessionDep`): the session's own connection, in the session's transaction; statements built
  with SQLAlchemy go through `self.session`, set-based ones (arrays, COPY) through
  `self.connection`, and both commit or roll back with the session;
- `await XRepository.from_connection(connection)` inside a transaction begun on a SQLAlchemy
  connection (`engine.begin()`, as the command line does): the same, on a session that joins
  that transaction and leaves its end to the caller;
- `XRepository(connection)` on a connection of one's own (`Database.connection()`, where each
  statement commits alone, `engine_connection`, or a rebuild's dedicated connection).

A repository never takes a lock or commits on its own: the service says when.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Self

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

PING_SQL = "SELECT 1"


class Repository:
    def __init__(self, connection: asyncpg.Connection, *, session: AsyncSession | None = None):
        self.connection = connection
        self._session = session

    @classmethod
    async def from_session(cls, session: AsyncSession) -> Self:
        return cls(await session_connection(session), session=session)

    @classmethod
    async def from_connection(cls, connection: AsyncConnection) -> Self:
        session = AsyncSession(bind=connection, join_transaction_mode="rollback_only")
        return await cls.from_session(session)

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError(f"{type(self).__name__} was built without a session")
        return self._session


def rows_affected(status: str) -> int:
    """The row count of an asyncpg command status ("INSERT 0 12", "UPDATE 3")."""
    return int(status.rsplit(" ", 1)[-1])


async def session_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session, inside the session's transaction. The driver
    begins that transaction with the first statement sent through the session; until then a
    statement sent to asyncpg directly would commit alone, so it is begun here if needed."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    if not driver.is_in_transaction():
        await _begin(connection, raw.dbapi_connection)
    return driver


async def _begin(connection: AsyncConnection, adapter: Any) -> None:
    """The session's transaction begun as the driver adapter would begin it before the first
    statement (a BEGIN alone), without sending a statement through the session, whose
    execution costs several times the round trip; a statement where the adapter has no such
    step."""
    start = getattr(adapter, "_start_transaction", None)
    if start is None or getattr(adapter, "_transaction", True) is not None:
        await connection.execute(sa.text(PING_SQL))
    else:
        await start()


@asynccontextmanager
async def engine_connection(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection of the engine as plain asyncpg, outside any transaction: each
    statement commits alone unless the caller opens `connection.transaction()`."""
    async with engine.connect() as connection:
        yield await _driver_of(connection)


async def ping(connection: asyncpg.Connection, *, timeout: float) -> None:
    """One round trip: raises if the server does not answer within `timeout` seconds."""
    await connection.fetchval(PING_SQL, timeout=timeout)


async def _driver_of(connection: AsyncConnection) -> asyncpg.Connection:
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    return driver
