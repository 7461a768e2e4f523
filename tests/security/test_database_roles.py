"""Each service's database role may do only what it needs; history refuses change for all.

Runs on the suite's migrated database (the `settings` fixture migrates it as the migrator),
logging in as each role with the stack's passwords."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from services.audit.repository.key_operations import CLAIM_SQL
from services.migrations import migrate_all
from shared.config import MIGRATOR_ROLE, Settings
from shared.database_roles import HISTORY_TABLES, SERVICE_ROLES
from tests.support.stack import SUPERUSER, IsolatedStack, dsn_as

ROLES = [role.name for role in SERVICE_ROLES]
OWN_SCHEMA = {role.name: role.schema for role in SERVICE_ROLES}
HISTORY_CHANGES: dict[str, list[str]] = {
    "journal": [
        "UPDATE intake.journal SET key_id = 'forged' WHERE event_id = $1",
        "DELETE FROM intake.journal WHERE event_id = $1",
    ],
    "key audit": [
        "UPDATE access.key_audit SET actor = 'forged' WHERE key_id = $1",
        "DELETE FROM access.key_audit WHERE key_id = $1",
    ],
    "application step": [
        "UPDATE applications.step SET reason = 'forged' WHERE application_id = $1",
        "DELETE FROM applications.step WHERE application_id = $1",
    ],
}
# A table of each service's schema that holds what people wrote or what the service decided.
TABLE_OF = {
    "intake": "intake.journal",
    "evaluation": "evaluation.status",
    "reporting": "reporting.unit_status",
    "applications": "applications.application",
    "console": "console.sessions",
    "audit": "audit.leaf",
    "cases": "cases.dispute",
    "webhooks": "webhooks.subscription",
}


@pytest.fixture(scope="module")
async def history(stack: IsolatedStack, settings: Settings) -> AsyncIterator[dict[str, object]]:
    """One row in each history table, put there as the migrator (their owner)."""
    event_id, application_id, key_id = uuid.uuid4(), uuid.uuid4(), f"k{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    connection = await asyncpg.connect(dsn_as(MIGRATOR_ROLE, stack.database))
    try:
        await connection.execute(
            "INSERT INTO intake.journal (event_id, type, unit_code, county_code, occurred_at, "
            "payload, content_hash, key_id) VALUES ($1, 'petition_visit', '340722100201', "
            "'340722000000', $2, '{}', repeat('0', 64), 'k')",
            event_id,
            now,
        )
        await connection.execute(
            "INSERT INTO access.key_audit (action, key_id, role, actor) "
            "VALUES ('created', $1, 'desk', 'test')",
            key_id,
        )
        await connection.execute(
            "INSERT INTO applications.application (application_id, county_code, period, state, "
            "version, created_at, updated_at) "
            "VALUES ($1, '340722000000', '2026', 'draft', 1, $2, $2)",
            application_id,
            now,
        )
        await connection.execute(
            "INSERT INTO applications.step (application_id, action, at) VALUES ($1, 'created', $2)",
            application_id,
            now,
        )
        yield {"journal": event_id, "key audit": key_id, "application step": application_id}
    finally:
        await connection.close()


async def refused(role: str, database: str, statement: str, *args: object) -> str:
    """The error the statement meets as `role` (fails the test when it succeeds)."""
    connection = await asyncpg.connect(dsn_as(role, database))
    try:
        async with connection.transaction():
            await connection.execute(statement, *args)
    except asyncpg.PostgresError as exc:
        return str(exc)
    finally:
        await connection.close()
    pytest.fail(f"{role} was allowed: {statement}")


@pytest.mark.parametrize("role", [*ROLES, MIGRATOR_ROLE])
@pytest.mark.parametrize("table", list(HISTORY_CHANGES))
async def test_no_role_changes_or_removes_history(
    stack: IsolatedStack, history: dict[str, object], role: str, table: str
) -> None:
    for statement in HISTORY_CHANGES[table]:
        error = await refused(role, stack.database, statement, history[table])
        assert "permission denied" in error or "is history" in error, error


async def test_the_owner_meets_the_trigger_not_a_missing_grant(
    stack: IsolatedStack, history: dict[str, object]
) -> None:
    error = await refused(
        MIGRATOR_ROLE, stack.database, HISTORY_CHANGES["journal"][1], history["journal"]
    )
    assert "intake.journal is history" in error


async def test_only_a_superuser_with_triggers_off_can_change_history(
    stack: IsolatedStack, history: dict[str, object]
) -> None:
    connection = await asyncpg.connect(dsn_as(SUPERUSER, stack.database))
    try:
        async with connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")
            status = await connection.execute(
                "UPDATE access.key_audit SET actor = 'rewritten' WHERE key_id = $1",
                history["key audit"],
            )
        assert status == "UPDATE 1"
        actor = await connection.fetchval(
            "SELECT actor FROM access.key_audit WHERE key_id = $1", history["key audit"]
        )
        assert actor == "rewritten"
    finally:
        await connection.close()


@pytest.mark.parametrize("role", ROLES)
async def test_no_service_role_creates_a_table(stack: IsolatedStack, role: str) -> None:
    own = OWN_SCHEMA[role]
    for statement in (
        f"CREATE TABLE {own}.planted (x int)",
        "CREATE TABLE public.planted (x int)",
        "CREATE TEMP TABLE planted (x int)",
        f"CREATE SCHEMA planted_{own}",
    ):
        assert "permission denied" in await refused(role, stack.database, statement)


@pytest.mark.parametrize("role", ROLES)
async def test_no_service_role_reads_another_services_tables(
    stack: IsolatedStack, role: str
) -> None:
    for schema, table in TABLE_OF.items():
        if schema != OWN_SCHEMA[role]:
            error = await refused(role, stack.database, f"SELECT * FROM {table} LIMIT 1")
            assert "permission denied" in error, (role, table, error)


@pytest.mark.parametrize("role", ROLES)
async def test_no_service_role_creates_a_key(stack: IsolatedStack, role: str) -> None:
    error = await refused(
        role,
        stack.database,
        "INSERT INTO access.api_keys (key_id, secret_hash, role) VALUES ('planted', 'x', 'admin')",
    )
    assert "permission denied" in error


async def test_the_console_reads_no_free_text(stack: IsolatedStack) -> None:
    for table in ("intake.free_text", "intake.journal", "applications.application"):
        error = await refused("sanwu_console", stack.database, f"SELECT * FROM {table}")
        assert "permission denied" in error


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_reads_its_own_schema_and_the_registry(
    stack: IsolatedStack, role: str
) -> None:
    connection = await asyncpg.connect(dsn_as(role, stack.database))
    try:
        await connection.fetch(f"SELECT * FROM {TABLE_OF[OWN_SCHEMA[role]]} LIMIT 1")
        assert await connection.fetchval("SELECT count(*) FROM registry.units") > 0
        await connection.fetch("SELECT key_id FROM access.api_keys LIMIT 1")
    finally:
        await connection.close()


async def test_the_migrator_migrates_and_grants_again(
    stack: IsolatedStack, settings: Settings
) -> None:
    """A second run is a no-op for the schemas and sets the same rights."""
    await migrate_all(settings)
    assert "permission denied" in await refused(
        "sanwu_evaluation", stack.database, "SELECT * FROM intake.journal"
    )


async def test_the_audit_role_claims_key_operations_and_no_other_role_reads_them(
    stack: IsolatedStack, settings: Settings
) -> None:
    connection = await asyncpg.connect(dsn_as("sanwu_audit", stack.database))
    try:
        # Claimed and removed, as the audit service does (rolled back: the log keeps them).
        transaction = connection.transaction()
        await transaction.start()
        await connection.fetch(CLAIM_SQL, 10)
        await transaction.rollback()
    finally:
        await connection.close()
    for role in ROLES:
        if role != "sanwu_audit":
            error = await refused(
                role, stack.database, "SELECT * FROM access.key_operations_outbox"
            )
            assert "permission denied" in error


@pytest.mark.parametrize("table", HISTORY_TABLES)
async def test_no_service_role_may_change_any_history_table(
    stack: IsolatedStack, settings: Settings, table: str
) -> None:
    """Every table listed as history, those of services to come included, by grant."""
    schema, name = table.split(".")
    connection = await asyncpg.connect(dsn_as(MIGRATOR_ROLE, stack.database))
    try:
        column = await connection.fetchval(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position LIMIT 1",
            schema,
            name,
        )
    finally:
        await connection.close()
    assert column is not None, f"{table} does not exist"
    for role in ROLES:
        for statement in (
            f"UPDATE {table} SET {column} = {column} WHERE false",
            f"DELETE FROM {table} WHERE false",
            f"TRUNCATE {table}",
        ):
            assert "permission denied" in await refused(role, stack.database, statement)


async def test_the_cases_role_reads_the_calendar_and_cannot_change_it(
    stack: IsolatedStack, settings: Settings
) -> None:
    connection = await asyncpg.connect(dsn_as("sanwu_cases", stack.database))
    try:
        assert await connection.fetchval("SELECT count(*) FROM cases.calendar_day") > 0
    finally:
        await connection.close()
    for statement in (
        "INSERT INTO cases.calendar_year (year, source, loaded_at) VALUES (2099, 'x', now())",
        "DELETE FROM cases.calendar_day WHERE false",
    ):
        assert "permission denied" in await refused("sanwu_cases", stack.database, statement)
