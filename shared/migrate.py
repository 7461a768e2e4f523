"""Alembic, one environment per schema owner (shared reference data, and each service).

Every environment's env.py calls `run_env`; `upgrade` runs one environment to head under an
advisory lock, so instances starting together migrate once.
"""

import asyncio
from pathlib import Path

import asyncpg
import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.db import asyncpg_dsn, is_connection_error
from shared.locks import LockName, lock_key
from shared.retry import retry_until_done

MIGRATION_LOCK = lock_key(LockName.migrations)
REGISTRY_MIGRATIONS = Path(__file__).parent / "migrations"


def _config(script_location: Path, *, schema: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["version_table_schema"] = schema
    return config


def upgrade_sync(script_location: Path, *, schema: str, url: str) -> None:
    command.upgrade(_config(script_location, schema=schema, url=url), "head")


async def upgrade(script_location: Path, *, schema: str, url: str) -> None:
    await wait_for_database(url)
    # Alembic's env runs its own event loop; give it a thread of its own.
    await asyncio.to_thread(upgrade_sync, script_location, schema=schema, url=url)


async def upgrade_service(location: Path, *, schema: str, url: str) -> None:
    """A service starts with the shared reference data and its own schema migrated."""
    await upgrade(REGISTRY_MIGRATIONS, schema="registry", url=url)
    await upgrade(location, schema=schema, url=url)


async def wait_for_database(url: str, *, timeout: float = 120.0) -> None:
    """A process that starts while PostgreSQL is down or still recovering waits for it, up to
    `timeout` seconds, rather than exiting."""

    async def connect() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(url), timeout=3)
        await connection.close()

    await retry_until_done(
        connect, event="database_waited_for", retry_if=is_connection_error, within=timeout
    )


def run_env() -> None:
    """The body of every env.py (online mode only)."""
    config = context.config
    schema = config.attributes["version_table_schema"]
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None

    def migrate(connection: Connection) -> None:
        context.configure(
            connection=connection,
            version_table_schema=schema,
            include_schemas=True,
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                await connection.execute(sa.select(sa.func.pg_advisory_lock(MIGRATION_LOCK)))
                try:
                    await connection.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
                    await connection.commit()
                    await connection.run_sync(migrate)
                    await connection.commit()
                finally:
                    await connection.execute(sa.select(sa.func.pg_advisory_unlock(MIGRATION_LOCK)))
                    await connection.commit()
        finally:
            await engine.dispose()

    asyncio.run(run())
