"""evaluation: each correction's own unit, sender key, state and reason; dead-lettered events

Corrections recorded before this revision have no sender key, so they count as refused (unknown
sender) the next time their target is evaluated: run `sanwu evaluation rebuild` after upgrading
to fill the new columns from the topic.

Revision ID: 0002_evaluation
Revises: 0001_evaluation
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0002_evaluation"
down_revision = "0001_evaluation"
branch_labels = None
depends_on = None

SCHEMA = "evaluation"


def upgrade() -> None:
    op.add_column("correction", sa.Column("unit_code", sa.String(12)), schema=SCHEMA)
    op.add_column("correction", sa.Column("key_id", sa.String(16)), schema=SCHEMA)
    op.add_column(
        "correction",
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        schema=SCHEMA,
    )
    op.add_column("correction", sa.Column("reason", sa.Text), schema=SCHEMA)
    op.create_table(
        "dead_letter",
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("unit_code", sa.String(12)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column(
            "dead_lettered_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.PrimaryKeyConstraint("event_id", name="pk_dead_letter"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("dead_letter", schema=SCHEMA)
    for column in ("reason", "state", "key_id", "unit_code"):
        op.drop_column("correction", column, schema=SCHEMA)
