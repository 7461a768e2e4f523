"""The one way every service builds a repository.

A repository holds the SQL of one store and runs it on one asyncpg connection:

- `await XRepository.from_session(session)` inside a unit of work (`Database.session()`,
  `SessionDep`): the session's own connection, in the session's transaction; statements built
  with SQLAlchemy go through `self.session`, set-based ones (arrays, COPY) through
  `self.connection`, and both commit or roll back with the session;
- `XRepository(connection)` on a connection of one's own (`Database.connection()`, where each
  statement commits alone, or a rebuild's dedicated connection).

A repository never takes a lock or commits on its own: the service says when.
"""

from typing import Self

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession


class Repository:
    def __init__(self, connection: asyncpg.Connection, *, session: AsyncSession | None = None):
        self.connection = connection
        self._session = session

    @classmethod
    async def from_session(cls, session: AsyncSession) -> Self:
        return cls(await session_connection(session), session=session)

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
    statement sent to asyncpg directly would commit alone, so one is sent here if needed."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    if not driver.is_in_transaction():
        await connection.execute(sa.text("SELECT 1"))
    return driver
