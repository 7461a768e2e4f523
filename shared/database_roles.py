"""Who may do what in the database: one table of rights, granted by every migration run.

The migrator (`shared.config.MIGRATOR_ROLE`) owns the database and every schema, and is the only
role that changes their structure: `sanwu db migrate`, the rebuilds that swap tables in, and the
operators' commands (`sanwu units load`, `sanwu keys`). Each service logs in as a role of its
own that owns nothing: it reads and writes its own schema (its history tables only read and
added to), reads the registry and the keys, and adds to the key audit. No service role may
create anything, not even a temporary table, nor read another service's schema, but for the
reference data a role names in `reads` (the working-day calendar, which operators load into the
cases schema and evaluation counts dispute windows on); the console's role reads no free text,
since it has no schema but its own.

The platform creates the login roles with their passwords (deploy/stack.sh, the Kubernetes
cluster's managed roles, compose's init script); `grant` sets their rights on one database
from scratch, so a right removed here is removed there too.
"""

from dataclasses import dataclass

import asyncpg

CALENDAR = ("cases.calendar_year", "cases.calendar_day")
# Tables whose rows are never changed or removed (`shared.append_only`); their service may only
# read and add to them.
HISTORY_TABLES = (
    "intake.journal",
    "access.key_audit",
    "applications.step",
    "audit.leaf",
    "audit.node",
    "audit.checkpoint",
    "cases.dispute_step",
    "cases.case_step",
)
# Schemas a migration run knows. `reads` and `appends` below name tables in them.
SCHEMAS = (
    "registry",
    "access",
    "intake",
    "evaluation",
    "reporting",
    "applications",
    "console",
    "audit",
    "cases",
    "webhooks",
)
# What every service needs beyond its own schema: units and keys to authenticate and scope
# requests; key expiries (and the console's sign-ins) go into the key audit.
SHARED_READS = ("registry.*", "access.api_keys")
SHARED_APPENDS = ("access.key_audit",)


CONSOLE_KEY_FUNCTIONS = (
    "access.mint_console_key(text, text, text, text, text, text, timestamptz, text)",
    "access.revoke_console_key(text, text)",
)


@dataclass(frozen=True)
class ServiceRole:
    name: str  # the login role
    schema: str  # read and written; its history tables only read and added to
    # Tables of its own schema it only reads (what operators load with `sanwu` commands).
    reads_only: tuple[str, ...] = ()
    # Outboxes of other schemas it claims (SELECT ... FOR UPDATE, which takes UPDATE) and
    # deletes from.
    drains: tuple[str, ...] = ()
    # Reference tables of other schemas it reads.
    reads: tuple[str, ...] = ()
    # Functions of other schemas it calls (each checks what it is asked; they run as the owner).
    calls: tuple[str, ...] = ()


SERVICE_ROLES = (
    ServiceRole("sanwu_intake", "intake"),
    ServiceRole("sanwu_evaluation", "evaluation", reads=CALENDAR),
    ServiceRole("sanwu_reporting", "reporting"),
    ServiceRole("sanwu_applications", "applications"),
    # Keys of people an identity provider signed in: minted and revoked only through these.
    ServiceRole("sanwu_console", "console", calls=CONSOLE_KEY_FUNCTIONS),
    # Key operations reach the log through an outbox a trigger on the key audit fills.
    ServiceRole("sanwu_audit", "audit", drains=("access.key_operations_outbox",)),
    # The working-day calendar is loaded by operators (`sanwu calendar`, as the migrator).
    ServiceRole("sanwu_cases", "cases", reads_only=CALENDAR),
    ServiceRole("sanwu_webhooks", "webhooks"),
)


class RolesMissing(Exception):
    """The platform has not created every service role on this cluster."""


MISSING_ROLES_SQL = (
    "SELECT name FROM unnest($1::text[]) AS name WHERE name NOT IN (SELECT rolname FROM pg_roles)"
)
EXISTING_SCHEMAS_SQL = "SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[])"


def statements(database: str, schemas: list[str]) -> list[str]:
    """The statements that set every service role's rights on `database`, whose existing
    schemas of ours are `schemas`."""
    roles = ", ".join(role.name for role in SERVICE_ROLES)
    found = [s for s in SCHEMAS if s in schemas]
    sql = [
        f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC',
        f'GRANT CONNECT ON DATABASE "{database}" TO {roles}',
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    ]
    for schema in found:
        sql += [
            f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC, {roles}",
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM PUBLIC, {roles}",
            f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM PUBLIC, {roles}",
        ]
    for role in SERVICE_ROLES:
        sql += _rights_of(role, found)
    return sql


def rights_on(schema: str) -> list[str]:
    """The statements that give a schema's service role its rights on the schema's tables as
    they are now: a rebuild that swaps new tables in runs them in the same transaction."""
    owner = next(role for role in SERVICE_ROLES if role.schema == schema)
    role = owner.name
    return [
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
        f"REVOKE INSERT, UPDATE, DELETE ON {schema}.alembic_version FROM {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
        *(
            f"REVOKE UPDATE, DELETE ON {table} FROM {role}"
            for table in HISTORY_TABLES
            if table.split(".")[0] == schema
        ),
        *(f"REVOKE INSERT, UPDATE, DELETE ON {table} FROM {role}" for table in owner.reads_only),
    ]


def _rights_of(role: ServiceRole, schemas: list[str]) -> list[str]:
    shared = {name.split(".")[0] for name in SHARED_READS + SHARED_APPENDS}
    sql = [f"GRANT USAGE ON SCHEMA {s} TO {role.name}" for s in sorted(shared) if s in schemas]
    if role.schema in schemas:
        sql += rights_on(role.schema)
    for name in SHARED_READS:
        schema, table = name.split(".")
        if schema in schemas:
            target = f"ALL TABLES IN SCHEMA {schema}" if table == "*" else name
            sql.append(f"GRANT SELECT ON {target} TO {role.name}")
    for name in role.reads:
        if name.split(".")[0] in schemas:
            sql += [
                f"GRANT USAGE ON SCHEMA {name.split('.')[0]} TO {role.name}",
                f"GRANT SELECT ON {name} TO {role.name}",
            ]
    sql += [
        f"GRANT SELECT, UPDATE, DELETE ON {name} TO {role.name}"
        for name in role.drains
        if name.split(".")[0] in schemas
    ]
    sql += [
        f"GRANT EXECUTE ON FUNCTION {name} TO {role.name}"
        for name in role.calls
        if name.split(".")[0] in schemas
    ]
    for name in SHARED_APPENDS:
        if name.split(".")[0] in schemas:
            sql += [
                f"GRANT INSERT ON {name} TO {role.name}",
                f"GRANT USAGE ON SEQUENCE {name}_id_seq TO {role.name}",
            ]
    return sql


async def grant(dsn: str) -> None:
    """Set every service role's rights on the database `dsn` names, as its owner."""
    connection = await asyncpg.connect(dsn)
    try:
        names = [role.name for role in SERVICE_ROLES]
        missing = [row["name"] for row in await connection.fetch(MISSING_ROLES_SQL, names)]
        if missing:
            raise RolesMissing(
                f"no database role {', '.join(missing)}: the platform creates the service "
                "roles (deploy/stack.sh does locally; see docs/operations.md)"
            )
        schemas = [r["nspname"] for r in await connection.fetch(EXISTING_SCHEMAS_SQL, SCHEMAS)]
        database = await connection.fetchval("SELECT current_database()")
        async with connection.transaction():
            for statement in statements(database, schemas):
                await connection.execute(statement)
    finally:
        await connection.close()
