"""Alembic, one environment per schema owner (shared reference data, and each service).

Every environment's env.py calls `run_env`; `upgrade` runs one environment to head under an
advisory lock, so two migration runs at once migrate once. Migrations run as the migrator
(`sanwu db migrate`, before the services start), and every run ends by granting the service
roles their rights (`shared.database_roles`). A service never migrates: it waits until its
schema and the shared one are at head (`wait_until_migrated`).
"""

import asyncio
from pathlib import Path

import asyncpg
import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared import database_roles
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
    """The shared reference data and one service's schema migrated, and the roles granted."""
    await upgrade(REGISTRY_MIGRATIONS, schema="registry", url=url)
    await upgrade(location, schema=schema, url=url)
    await database_roles.grant(asyncpg_dsn(url))


class NotMigrated(Exception):
    """A schema is not at the head of its migrations (or cannot be read yet)."""


VERSION_SQL = "SELECT version_num FROM {schema}.alembic_version"
# What a service role sees before the grants of a first migration run exist.
_NOT_YET = (
    asyncpg.UndefinedTableError,
    asyncpg.InvalidSchemaNameError,
    asyncpg.InsufficientPrivilegeError,
)


def head_of(script_location: Path) -> str | None:
    return ScriptDirectory(str(script_location)).get_current_head()


async def wait_until_migrated(
    location: Path, *, schema: str, url: str, timeout: float = 120.0
) -> None:
    """Wait, up to `timeout` seconds, until the shared schema and the service's are at head:
    `sanwu db migrate` (a deployment's migration Job) runs before or while services start."""
    heads = {"registry": head_of(REGISTRY_MIGRATIONS), schema: head_of(location)}

    async def check() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(url), timeout=3)
        try:
            for name, head in heads.items():
                try:
                    current = await connection.fetchval(VERSION_SQL.format(schema=name))
                except _NOT_YET as exc:
                    raise NotMigrated(f"schema {name} is not migrated ({exc})") from exc
                if current != head:
                    raise NotMigrated(f"schema {name} is at {current}, not {head}")
        finally:
            await connection.close()

    await retry_until_done(
        check,
        event="waiting_for_migrations",
        retry_if=lambda exc: isinstance(exc, NotMigrated) or is_connection_error(exc),
        within=timeout,
        hint="run `sanwu db migrate` as the migrator",
    )


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
