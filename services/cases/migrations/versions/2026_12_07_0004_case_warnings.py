"""cases: the early warnings a case's clocks raise on the unit it is with (a duty due within
3 days, or overdue), each kept at its latest version, and the outbox to the warning topic

Revision ID: 0004_cases
Revises: 0003_cases
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.outbox import outbox_table

revision = "0004_cases"
down_revision = "0003_cases"
branch_labels = None
depends_on = None

SCHEMA = "cases"
MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "case_warning",
        sa.Column("warning_id", UUID(as_uuid=True), nullable=False),
        sa.Column("case_id", UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("unit_code", sa.CHAR(12), nullable=False),
        sa.Column("raised_at", MOMENT, nullable=False),
        sa.Column("cleared_at", MOMENT),
        sa.Column("detail", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("warning_id", name="pk_case_warning"),
        sa.ForeignKeyConstraint(
            ["case_id"], [f"{SCHEMA}.case.case_id"], name="fk_case_warning_case"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_case_warning_raised",
        "case_warning",
        ["case_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("cleared_at IS NULL"),
    )
    op.create_table(
        "warning_outbox",
        *[column._copy() for column in outbox_table(SCHEMA).columns],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("warning_outbox", schema=SCHEMA)
    op.drop_table("case_warning", schema=SCHEMA)
