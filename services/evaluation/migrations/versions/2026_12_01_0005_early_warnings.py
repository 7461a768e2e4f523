"""evaluation: early warnings, what raised them, and their outbox

`warning_visit` holds what the warnings read from a visit beyond `event` (when intake accepted
it, the petitioner's keyed hash, its county as reported and as attributed now); `warning` every
warning ever raised, cleared ones included; `warning_outbox` their changes waiting to be
published on the warning topic. Visits applied before this revision have no `warning_visit`
row: run `sanwu evaluation rebuild` once after upgrading.

Revision ID: 0005_evaluation
Revises: 0004_evaluation
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from shared.outbox import outbox_table

revision = "0005_evaluation"
down_revision = "0004_evaluation"
branch_labels = None
depends_on = None

SCHEMA = "evaluation"
CODE = sa.String(12)
MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "warning_visit",
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("accepted_at", MOMENT, nullable=False),
        sa.Column("occurred_at", MOMENT, nullable=False),
        sa.Column("petitioner_ref", sa.Text),
        sa.Column("reported_county", CODE, nullable=False),
        sa.Column("county", CODE),
        sa.PrimaryKeyConstraint("event_id", name="pk_warning_visit"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_warning_visit_petitioner_ref", "warning_visit", ["petitioner_ref"], schema=SCHEMA
    )
    op.create_index(
        "ix_warning_visit_reported_county_occurred_at",
        "warning_visit",
        ["reported_county", "occurred_at"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_warning_visit_county_occurred_at",
        "warning_visit",
        ["county", "occurred_at"],
        schema=SCHEMA,
    )
    op.create_table(
        "warning",
        sa.Column("warning_id", UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("unit_code", CODE, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("cause_at", MOMENT, nullable=False),
        sa.Column("raised_at", MOMENT, nullable=False),
        sa.Column("cleared_at", MOMENT),
        sa.Column("event_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
        sa.Column("detail", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("warning_id", name="pk_warning"),
        schema=SCHEMA,
    )
    op.create_index("ix_warning_kind_scope", "warning", ["kind", "scope"], schema=SCHEMA)
    op.create_index(
        "ix_warning_event_ids", "warning", ["event_ids"], schema=SCHEMA, postgresql_using="gin"
    )
    op.create_table(
        "warning_outbox",
        *[column._copy() for column in outbox_table(SCHEMA).columns],
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("warning_outbox", "warning", "warning_visit"):
        op.drop_table(table, schema=SCHEMA)
