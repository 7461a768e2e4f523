"""evaluation: events applied, corrections, effects, statuses, rolling expiry and outbox

Revision ID: 0001_evaluation
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from shared.outbox import create_outbox, drop_outbox

revision = "0001_evaluation"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "evaluation"
CODE = sa.String(12)
MOMENT = sa.DateTime(timezone=True)
COUNTS = ("skip_level", "non_reception_site", "collective", "incident")


def upgrade() -> None:
    op.create_table(
        "event",
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("known", sa.Boolean, nullable=False),
        sa.Column("type", sa.String(16)),
        sa.Column("unit_code", CODE),
        sa.Column("attributed_code", CODE),
        sa.Column("occurred_at", MOMENT),
        sa.Column("destination", sa.String(16)),
        sa.Column("headcount", sa.Integer, nullable=False, server_default="0"),
        sa.Column("skip_level", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("non_reception_site", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("voided", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("event_id", name="pk_event"),
        schema=SCHEMA,
    )
    op.create_table(
        "correction",
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("target_event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("new_unit_code", CODE),
        sa.Column("occurred_at", MOMENT, nullable=False),
        sa.Column("accepted_at", MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_correction"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_correction_target_event_id", "correction", ["target_event_id"], schema=SCHEMA
    )
    op.create_table(
        "effect",
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("unit_code", CODE, nullable=False),
        sa.Column("criteria", sa.SmallInteger, nullable=False),
        sa.Column("headcount", sa.Integer, nullable=False),
        sa.Column("occurred_at", MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("event_id", "unit_code", name="pk_effect"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_effect_unit_code_occurred_at", "effect", ["unit_code", "occurred_at"], schema=SCHEMA
    )
    op.create_index("ix_effect_occurred_at", "effect", ["occurred_at"], schema=SCHEMA)
    op.create_table(
        "status",
        sa.Column("unit_code", CODE, nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("three_no", sa.Boolean, nullable=False),
        *[sa.Column(name, sa.Integer, nullable=False) for name in COUNTS],
        *[sa.Column(f"{name}_people", sa.Integer, nullable=False) for name in COUNTS],
        sa.Column("counting_event_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
        sa.Column("changed_at", MOMENT, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("unit_code", "period", name="pk_status"),
        schema=SCHEMA,
    )
    op.create_table(
        "rolling_expiry",
        sa.Column("id", sa.SmallInteger, nullable=False),
        sa.Column("window_start", MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rolling_expiry"),
        schema=SCHEMA,
    )
    create_outbox(SCHEMA)


def downgrade() -> None:
    drop_outbox(SCHEMA)
    for table in ("rolling_expiry", "status", "effect", "correction", "event"):
        op.drop_table(table, schema=SCHEMA)
