"""cases: cases (信访事项) as they stand, their protected summaries, the history of their steps
(kept forever, committed in order) and the outbox to the cases topic

Revision ID: 0003_cases
Revises: 0002_cases
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from shared.append_only import drop_append_only, make_append_only
from shared.outbox import outbox_table

revision = "0003_cases"
down_revision = "0002_cases"
branch_labels = None
depends_on = None

SCHEMA = "cases"
STATES = (
    "registered",
    "routed",
    "accepted",
    "declined",
    "replied",
    "review_requested",
    "closed",
    "repeat",
    "refused",
)
MOMENT = sa.DateTime(timezone=True)
CODE = sa.CHAR(12)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "case",
        sa.Column("case_id", UUID(as_uuid=True), nullable=False),
        sa.Column("unit_code", CODE, nullable=False),
        sa.Column("first_receiver", CODE, nullable=False),
        sa.Column("owner_unit", CODE, nullable=False),
        sa.Column("owner_body", sa.Text),
        sa.Column("received_at", MOMENT, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("petitioner_ref", sa.Text, nullable=False),
        sa.Column("headcount", sa.Integer, nullable=False),
        sa.Column("event_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("repeat_of", UUID(as_uuid=True)),
        sa.Column("reviews", sa.SmallInteger, nullable=False),
        sa.Column("rating", sa.Text),
        # What the registration said (its summary included): the same again is a duplicate.
        sa.Column("content_hash", sa.CHAR(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("registered_at", MOMENT, nullable=False),
        sa.Column("changed_at", MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("case_id", name="pk_case"),
        sa.CheckConstraint(_one_of("state", STATES), name="ck_case_state"),
        sa.CheckConstraint("reviews BETWEEN 0 AND 2", name="ck_case_reviews"),
        schema=SCHEMA,
    )
    # A petitioner's matters (repeats are found by petitioner and category).
    op.create_index(
        "ix_case_matter",
        "case",
        ["petitioner_ref", "category", "received_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("repeat_of IS NULL"),
    )
    op.create_index("ix_case_unit", "case", ["unit_code", "received_at"], schema=SCHEMA)
    op.create_index("ix_case_owner", "case", ["owner_unit", "owner_body", "state"], schema=SCHEMA)
    # The petitioner's own words: protected, never published, shown only to who handles it.
    op.create_table(
        "case_summary",
        sa.Column("case_id", UUID(as_uuid=True), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("case_id", name="pk_case_summary"),
        sa.ForeignKeyConstraint(
            ["case_id"], [f"{SCHEMA}.case.case_id"], name="fk_case_summary_case"
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "case_step",
        sa.Column("step_id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("case_id", UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("at", MOMENT, nullable=False),
        sa.Column("recorded_at", MOMENT, nullable=False),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("scope_code", CODE),
        sa.Column("body", sa.Text),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", JSONB, nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("step_id", name="pk_case_step"),
        sa.UniqueConstraint("case_id", "version", name="uq_case_step_version"),
        sa.ForeignKeyConstraint(["case_id"], [f"{SCHEMA}.case.case_id"], name="fk_case_step_case"),
        schema=SCHEMA,
    )
    make_append_only(SCHEMA, "case_step")
    # Every transaction that records case steps locks this row first: they commit in step_id
    # order, which the cases feed's cursor relies on.
    op.create_table(
        "case_step_turn",
        sa.Column("id", sa.SmallInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_case_step_turn"),
        sa.CheckConstraint("id = 1", name="ck_case_step_turn_one_row"),
        schema=SCHEMA,
    )
    op.execute(f"INSERT INTO {SCHEMA}.case_step_turn (id) VALUES (1)")
    op.create_table(
        "case_outbox",
        *[column._copy() for column in outbox_table(SCHEMA).columns],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("case_outbox", schema=SCHEMA)
    op.drop_table("case_step_turn", schema=SCHEMA)
    drop_append_only(SCHEMA, "case_step")
    op.drop_table("case_step", schema=SCHEMA)
    op.drop_table("case_summary", schema=SCHEMA)
    op.drop_table("case", schema=SCHEMA)
