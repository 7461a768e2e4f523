"""evaluation: the registry version the effects follow, effects pending for the rolling period

The followed version starts as the registry's version now: effects computed before this
revision are taken to follow it. If units moved before upgrading, run `sanwu evaluation
rebuild`.

Revision ID: 0003_evaluation
Revises: 0002_evaluation
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_evaluation"
down_revision = "0002_evaluation"
branch_labels = None
depends_on = None

SCHEMA = "evaluation"
CODE = sa.String(12)


def upgrade() -> None:
    op.create_index("ix_event_attributed_code", "event", ["attributed_code"], schema=SCHEMA)
    op.create_table(
        "rolling_pending",
        sa.Column("unit_code", CODE, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("unit_code", "occurred_at", name="pk_rolling_pending"),
        schema=SCHEMA,
    )
    op.create_table(
        "registry_followed",
        sa.Column("id", sa.SmallInteger, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registry_followed"),
        schema=SCHEMA,
    )
    op.execute(
        f"INSERT INTO {SCHEMA}.registry_followed (id, version) "
        "SELECT 1, coalesce((SELECT version FROM registry.meta WHERE id = 1), 0)"
    )


def downgrade() -> None:
    for table in ("registry_followed", "rolling_pending"):
        op.drop_table(table, schema=SCHEMA)
    op.drop_index("ix_event_attributed_code", table_name="event", schema=SCHEMA)
