"""applications: unit statuses as the status topic says, applications and their units, the
history of every step, and the outbox to the applications topic

Revision ID: 0001_applications
Revises:
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from shared.outbox import create_outbox, drop_outbox

revision = "0001_applications"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "applications"
APPLICATION_STATES = ("draft", "submitted", "reviewed", "decided")
UNIT_STATES = ("proposed", "submitted", "recommended", "returned", "awarded", "rejected", "revoked")
# A unit in one of these states no longer holds its place for the period.
CLOSED_STATES = ("returned", "rejected", "revoked")
ACTIONS = (
    "created",
    "submitted",
    "approved",
    "returned",
    "awarded",
    "rejected",
    "flagged",
    "flag_cleared",
    "revoked",
)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "unit_status",
        sa.Column("unit_code", sa.CHAR(12), nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("three_no", sa.Boolean, nullable=False),
        sa.Column("counting_event_ids", ARRAY(sa.Text), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counts", JSONB, nullable=False, server_default="{}"),
        sa.Column("people", JSONB, nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("unit_code", "period", name="pk_unit_status"),
        schema=SCHEMA,
    )
    op.create_table(
        "application",
        sa.Column("application_id", UUID(as_uuid=True), nullable=False),
        sa.Column("county_code", sa.CHAR(12), nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("application_id", name="pk_application"),
        sa.CheckConstraint(_one_of("state", APPLICATION_STATES), name="ck_application_state"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_application_county_code", "application", ["county_code", "period"], schema=SCHEMA
    )
    op.create_table(
        "application_unit",
        sa.Column("application_id", UUID(as_uuid=True), nullable=False),
        sa.Column("unit_code", sa.CHAR(12), nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("self_evaluation", sa.Text, nullable=False),
        sa.Column("rectifications", JSONB, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("evidence", JSONB, nullable=True),
        sa.Column("decision_reason", sa.Text, nullable=True),
        sa.Column("flag_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("flag_event_ids", ARRAY(sa.Text), nullable=True),
        sa.PrimaryKeyConstraint("application_id", "unit_code", name="pk_application_unit"),
        sa.ForeignKeyConstraint(
            ["application_id"],
            [f"{SCHEMA}.application.application_id"],
            name="fk_application_unit_application_id_application",
        ),
        sa.CheckConstraint(_one_of("state", UNIT_STATES), name="ck_application_unit_state"),
        schema=SCHEMA,
    )
    # One live application per unit and period.
    op.create_index(
        "uq_application_unit_live",
        "application_unit",
        ["unit_code", "period"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text(f"NOT ({_one_of('state', CLOSED_STATES)})"),
    )
    op.create_table(
        "step",
        sa.Column("step_id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("application_id", UUID(as_uuid=True), nullable=False),
        sa.Column("unit_code", sa.CHAR(12), nullable=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("key_id", sa.Text, nullable=True),
        sa.Column("role", sa.Text, nullable=True),
        sa.Column("scope_code", sa.CHAR(12), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("detail", JSONB, nullable=False, server_default="{}"),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("step_id", name="pk_step"),
        sa.ForeignKeyConstraint(
            ["application_id"],
            [f"{SCHEMA}.application.application_id"],
            name="fk_step_application_id_application",
        ),
        sa.CheckConstraint(_one_of("action", ACTIONS), name="ck_step_action"),
        schema=SCHEMA,
    )
    op.create_index("ix_step_application_id", "step", ["application_id", "step_id"], schema=SCHEMA)
    create_outbox(SCHEMA)


def downgrade() -> None:
    drop_outbox(SCHEMA)
    op.drop_table("step", schema=SCHEMA)
    op.drop_table("application_unit", schema=SCHEMA)
    op.drop_table("application", schema=SCHEMA)
    op.drop_table("unit_status", schema=SCHEMA)
