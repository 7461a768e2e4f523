"""Database plumbing: one async engine per process, one session per request or unit of work.

The session scope commits on success and rolls back on error; services and repositories only
flush. Connection failures surface as `DependencyUnavailable` (503), never as a hang.

Hot paths that need a single statement (accepting an event, looking up a key) use a plain
asyncpg connection from `Database.connection()` instead: each statement is its own transaction,
so there is no BEGIN or COMMIT round trip and no ORM bookkeeping per request.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel import SQLModel

from shared.config import Settings
from shared.errors import CommitOutcomeUnknown, DependencyUnavailable, PoolExhausted

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION


CONNECT_TIMEOUT_SECONDS = 3
COMMAND_TIMEOUT_SECONDS = 30
POOL_TIMEOUT_SECONDS = 5


def create_engine(settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    engine = create_async_engine(
        settings.database_url,
        pool_size=pool_size or settings.database_pool_size,
        max_overflow=5,
        pool_timeout=settings.database_pool_timeout_seconds,
        connect_args={
            "timeout": CONNECT_TIMEOUT_SECONDS,
            "command_timeout": COMMAND_TIMEOUT_SECONDS,
        },
    )
    sa.event.listen(engine.sync_engine, "checkout", _replace_if_closed)
    return engine


def _replace_if_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Pool checkout: a connection the server has closed (PostgreSQL restarted, the backend was
    terminated) is replaced before it is handed out, so the first request after the database
    returns succeeds. asyncpg marks a connection closed as soon as the event loop reads the end
    of its socket, so this costs no round trip, where a pre-ping costs one per checkout. A
    connection that fails later anyway (its peer vanished without closing it) makes SQLAlchemy
    invalidate the pool, and that request gets a 503."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


# SQLSTATE classes that mean "the server is not there for us": connection exceptions (08) and
# operator intervention (57: shutting down, crashed, starting up).
UNAVAILABLE_SQLSTATES = ("08", "57P")


def is_connection_error(exc: BaseException) -> bool:
    """Whether the database was unreachable, rather than the statement wrong."""
    seen: BaseException | None = exc
    for _ in range(10):  # the cause chain is short; the bound guards against a cycle
        if seen is None:
            break
        if isinstance(seen, OperationalError | InterfaceError | OSError | TimeoutError):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, asyncpg.InterfaceError | asyncpg.ConnectionDoesNotExistError):
            return True
        sqlstate = getattr(seen, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(UNAVAILABLE_SQLSTATES):
            return True
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return False


def _raise_if_unreachable(exc: Exception, *, outcome_unknown: bool) -> None:
    """A lost database as the API's error: 504 if what was sent may have committed, 503 if
    nothing was. Any other error is left to the caller to re-raise."""
    if is_connection_error(exc):
        error = CommitOutcomeUnknown if outcome_unknown else DependencyUnavailable
        raise error("database", str(exc)) from exc


async def _reset_if_in_transaction(connection: asyncpg.Connection) -> None:
    """Pool release. The default reset costs a round trip (UNLISTEN, RESET ALL, ...) to undo
    session state that these connections never set: they run plain statements, so all there
    can be to undo is a transaction a failure left open."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


class Database:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        pool_size: int = 10,
        pool_timeout: float = POOL_TIMEOUT_SECONDS,
    ) -> None:
        self.engine = engine
        self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        self._pool_size = pool_size
        self._pool_timeout = pool_timeout
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, pool_size: int | None = None) -> "Database":
        size = pool_size or settings.database_pool_size
        return cls(
            create_engine(settings, pool_size=size),
            pool_size=size,
            pool_timeout=settings.database_pool_timeout_seconds,
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits when the block succeeds, rolls back when it raises.

        Losing the database before the commit means nothing was stored (DependencyUnavailable).
        Losing it during the commit leaves the outcome unknown: the server may have made the
        transaction durable without being able to say so (CommitOutcomeUnknown)."""
        committing = False
        try:
            async with self.sessionmaker() as session, session.begin():
                yield session
                committing = True
        except PoolTimeout as exc:
            raise PoolExhausted("database", str(exc)) from exc
        except Exception as exc:
            _raise_if_unreachable(exc, outcome_unknown=committing)
            raise

    @asynccontextmanager
    async def connection(self, *, commits: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A pooled asyncpg connection outside any transaction: every statement commits alone.

        The database unreachable before a statement is sent: DependencyUnavailable (nothing was
        stored). With `commits`, losing the connection while a statement runs leaves its outcome
        unknown (CommitOutcomeUnknown); a read only ever fails as unavailable."""
        try:
            pool = await self._raw_pool()
            # asyncio.timeout rather than acquire(timeout=...): a timer, not a task, per request.
            async with asyncio.timeout(self._pool_timeout):
                connection = await pool.acquire()
        except TimeoutError as exc:
            # Either every connection stayed busy, or connecting took the whole wait.
            if pool_is_full(self._pool):
                raise PoolExhausted("database", "no pooled connection came free") from exc
            raise DependencyUnavailable("database", "no connection within the wait") from exc
        except Exception as exc:
            _raise_if_unreachable(exc, outcome_unknown=False)
            raise
        try:
            yield connection
        except Exception as exc:
            _raise_if_unreachable(exc, outcome_unknown=commits)
            raise
        finally:
            await pool.release(connection)

    async def _raw_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    # min_size 0: creating the pool connects nothing, so it works while the
                    # database is down and the first acquire reports that as unavailable.
                    self._pool = await asyncpg.create_pool(
                        asyncpg_dsn(self.engine.url.render_as_string(hide_password=False)),
                        min_size=0,
                        max_size=self._pool_size,
                        timeout=CONNECT_TIMEOUT_SECONDS,
                        command_timeout=COMMAND_TIMEOUT_SECONDS,
                        reset=_reset_if_in_transaction,
                    )
        return self._pool

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(sa.select(1))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), POOL_TIMEOUT_SECONDS)
            except TimeoutError:
                self._pool.terminate()
            self._pool = None
        await self.engine.dispose()


def pool_is_full(pool: asyncpg.Pool | None) -> bool:
    """Whether every connection the pool may hold is open and handed out."""
    if pool is None:
        return False
    return pool.get_size() >= pool.get_max_size() and pool.get_idle_size() == 0


def asyncpg_dsn(database_url: str) -> str:
    """The SQLAlchemy URL as a plain libpq-style DSN for a raw asyncpg connection."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
