"""reporting read model: the disputes of counting events, as their newest step left them

Filled by the disputes topic's consumer, not by a rebuild; a status lists its counting events
with a live dispute (filed, or its review requested).

Revision ID: 0003_reporting
Revises: 0002_reporting
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0003_reporting"
down_revision = "0002_reporting"
branch_labels = None
depends_on = None

SCHEMA = "reporting"


def upgrade() -> None:
    op.create_table(
        "disputes",
        sa.Column("dispute_id", UUID(as_uuid=True), nullable=False),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("unit_code", sa.CHAR(12), nullable=False),
        sa.Column("live", sa.Boolean, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column(
            "applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("dispute_id", name="pk_disputes"),
        schema=SCHEMA,
    )
    op.create_index("ix_disputes_event_id", "disputes", ["event_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("disputes", schema=SCHEMA)
