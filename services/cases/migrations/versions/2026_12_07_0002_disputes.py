"""cases: the events a dispute may name (as the petition-event topic says), disputes, the
history of their steps (kept forever, committed in order) and the outbox to the disputes topic

Revision ID: 0002_cases
Revises: 0001_cases
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.append_only import drop_append_only, make_append_only
from shared.outbox import create_outbox, drop_outbox

revision = "0002_cases"
down_revision = "0001_cases"
branch_labels = None
depends_on = None

SCHEMA = "cases"
STATES = ("filed", "decided", "review_requested", "reviewed", "withdrawn")
LIVE = ("filed", "decided", "review_requested")
MOMENT = sa.DateTime(timezone=True)
CODE = sa.CHAR(12)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "event",
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("unit_code", CODE, nullable=False),
        sa.Column("accepted_at", MOMENT, nullable=False),
        sa.Column("reported_at", MOMENT),
        sa.Column("target_event_id", UUID(as_uuid=True)),
        sa.Column("new_unit_code", CODE),
        sa.PrimaryKeyConstraint("event_id", name="pk_event"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_event_target",
        "event",
        ["target_event_id", "accepted_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("target_event_id IS NOT NULL"),
    )
    op.create_table(
        "dispute",
        sa.Column("dispute_id", UUID(as_uuid=True), nullable=False),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("unit_code", CODE, nullable=False),
        sa.Column("grounds", sa.Text, nullable=False),
        sa.Column("proposed_unit", CODE),
        sa.Column("duplicate_of", UUID(as_uuid=True)),
        sa.Column("statement", sa.Text, nullable=False),
        sa.Column("filer_scope", CODE, nullable=False),
        sa.Column("decider_code", CODE, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("decision", JSONB),
        sa.Column("review_request_until", sa.Date),
        sa.Column("review", JSONB),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("filed_at", MOMENT, nullable=False),
        sa.Column("changed_at", MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("dispute_id", name="pk_dispute"),
        sa.CheckConstraint(_one_of("state", STATES), name="ck_dispute_state"),
        schema=SCHEMA,
    )
    # One live dispute per event.
    op.create_index(
        "ux_dispute_live_event",
        "dispute",
        ["event_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text(_one_of("state", LIVE)),
    )
    op.create_index("ix_dispute_unit", "dispute", ["unit_code", "state"], schema=SCHEMA)
    op.create_table(
        "dispute_step",
        sa.Column("step_id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("dispute_id", UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("at", MOMENT, nullable=False),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("scope_code", CODE),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", JSONB, nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("step_id", name="pk_dispute_step"),
        sa.UniqueConstraint("dispute_id", "version", name="uq_dispute_step_version"),
        sa.ForeignKeyConstraint(
            ["dispute_id"], [f"{SCHEMA}.dispute.dispute_id"], name="fk_dispute_step_dispute"
        ),
        schema=SCHEMA,
    )
    make_append_only(SCHEMA, "dispute_step")
    # Every transaction that records a step locks this row first: steps commit in step_id
    # order, which the feed's cursor relies on.
    op.create_table(
        "step_turn",
        sa.Column("id", sa.SmallInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_step_turn"),
        sa.CheckConstraint("id = 1", name="ck_step_turn_one_row"),
        schema=SCHEMA,
    )
    op.execute(f"INSERT INTO {SCHEMA}.step_turn (id) VALUES (1)")
    create_outbox(SCHEMA)


def downgrade() -> None:
    drop_outbox(SCHEMA)
    op.drop_table("step_turn", schema=SCHEMA)
    drop_append_only(SCHEMA, "dispute_step")
    op.drop_table("dispute_step", schema=SCHEMA)
    op.drop_table("dispute", schema=SCHEMA)
    op.drop_table("event", schema=SCHEMA)
