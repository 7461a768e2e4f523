"""History tables: rows are added, never changed or removed, and the database itself says so.

A trigger refuses UPDATE, DELETE and TRUNCATE for every role, the owner and the service that
writes the table included; only a superuser who turns triggers off for a session
(`SET session_replication_role = replica`) can change history, which the audit log's
verifier then finds. The grants (`shared.database_roles`) give the service roles INSERT and
SELECT only, so the trigger is the second wall, not the first."""

from alembic import op

REFUSE_FUNCTION = "refuse_history_change"


def make_append_only(schema: str, table: str) -> None:
    """Migration step: refuse changes to `schema.table`'s rows from now on."""
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {schema}.{REFUSE_FUNCTION}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '%.% is history: its rows are never changed or removed',
                TG_TABLE_SCHEMA, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {schema}.{table} "
        f"FOR EACH ROW EXECUTE FUNCTION {schema}.{REFUSE_FUNCTION}()"
    )
    op.execute(
        f"CREATE TRIGGER {table}_not_truncated BEFORE TRUNCATE ON {schema}.{table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{REFUSE_FUNCTION}()"
    )


def drop_append_only(schema: str, table: str) -> None:
    op.execute(f"DROP TRIGGER IF EXISTS {table}_not_truncated ON {schema}.{table}")
    op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {schema}.{table}")
