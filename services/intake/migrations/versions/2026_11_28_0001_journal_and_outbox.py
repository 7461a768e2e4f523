"""intake journal and outbox

Revision ID: 0001_intake
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.outbox import create_outbox, drop_outbox

revision = "0001_intake"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journal",
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("unit_code", sa.CHAR(12), nullable=False),
        sa.Column("county_code", sa.CHAR(12), nullable=False),
        sa.Column("target_event_id", UUID(as_uuid=True), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("content_hash", sa.CHAR(64), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("correlation_id", sa.String(64), nullable=True),
        sa.Column(
            "accepted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema="intake",
    )
    op.create_index(
        "ix_journal_target_event_id",
        "journal",
        ["target_event_id"],
        schema="intake",
        postgresql_where=sa.text("target_event_id IS NOT NULL"),
    )
    create_outbox("intake")


def downgrade() -> None:
    drop_outbox("intake")
    op.drop_table("journal", schema="intake")
