"""The outbox table and the migration steps that create it and its wake trigger."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB


def outbox_table(
    schema: str, metadata: sa.MetaData | None = None, *, name: str = "outbox"
) -> sa.Table:
    return sa.Table(
        name,
        metadata or sa.MetaData(),
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("key", sa.LargeBinary, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("headers", JSONB, nullable=False, server_default="{}"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=schema,
    )


def channel_of(schema: str) -> str:
    return f"{schema}_outbox"


def create_outbox(schema: str) -> None:
    """Migration step: the outbox table and a trigger that wakes relays when rows commit."""
    op.create_table(
        "outbox",
        *[column._copy() for column in outbox_table(schema).columns],
        schema=schema,
    )
    create_wake_trigger(schema)


def create_wake_trigger(schema: str) -> None:
    """Migration step: NOTIFY relays of other processes whenever outbox rows commit. Worth it
    for outboxes written in batches; a NOTIFY serialises the commits that send it, so an
    outbox written one row per transaction does without and wakes its relay in process."""
    _notify_with(schema, "''")
    op.execute(
        f"""
        CREATE TRIGGER outbox_notify AFTER INSERT ON {schema}.outbox
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_outbox()
        """
    )


def name_table_in_wake(schema: str) -> None:
    """Migration step: the wake-up's payload names the outbox table whose rows committed, so
    that relays of several outboxes of one schema wake for their own table only (a relay also
    wakes for an empty payload, as the wake-up of `create_wake_trigger` sends)."""
    _notify_with(schema, "TG_TABLE_NAME")


def unname_table_in_wake(schema: str) -> None:
    _notify_with(schema, "''")


def _notify_with(schema: str, payload: str) -> None:
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {schema}.notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('{channel_of(schema)}', {payload}); RETURN NULL; END $$
        """
    )


def drop_wake_trigger(schema: str) -> None:
    op.execute(f"DROP TRIGGER outbox_notify ON {schema}.outbox")
    op.execute(f"DROP FUNCTION {schema}.notify_outbox()")


def drop_outbox(schema: str) -> None:
    op.execute(f"DROP TRIGGER IF EXISTS outbox_notify ON {schema}.outbox")
    op.execute(f"DROP FUNCTION IF EXISTS {schema}.notify_outbox()")
    op.drop_table("outbox", schema=schema)
