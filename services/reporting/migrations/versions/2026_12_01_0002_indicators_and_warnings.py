"""reporting read model: work-record indicators per unit and period, early warnings and their feed

Revision ID: 0002_reporting
Revises: 0001_reporting
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "0002_reporting"
down_revision = "0001_reporting"
branch_labels = None
depends_on = None

SCHEMA = "reporting"
LEVELS = ("province", "city", "county", "township", "village")
RATINGS = ("satisfied", "basically_satisfied", "dissatisfied")


def warning_columns() -> list[sa.Column]:
    return [
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("unit_code", sa.CHAR(12), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_ids", ARRAY(sa.Text), nullable=False),
        sa.Column("detail", JSONB, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column(
            "applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "unit_indicators",
        sa.Column("unit_code", sa.CHAR(12), nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("meetings_held", ARRAY(sa.Date), nullable=False),
        sa.Column("ratings", JSONB, nullable=False),
        *[sa.Column(r, sa.BigInteger, nullable=False, server_default="0") for r in RATINGS],
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column(
            "applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("unit_code", "period", name="pk_unit_indicators"),
        schema=SCHEMA,
    )
    op.create_table(
        "early_warnings",
        sa.Column("warning_id", UUID(as_uuid=True), nullable=False),
        *warning_columns(),
        sa.PrimaryKeyConstraint("warning_id", name="pk_early_warnings"),
        schema=SCHEMA,
    )
    op.create_table(
        "warning_changes",
        sa.Column("seq", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("warning_id", UUID(as_uuid=True), nullable=False),
        *[sa.Column(f"{level}_code", sa.CHAR(12), nullable=True) for level in LEVELS],
        *warning_columns(),
        sa.PrimaryKeyConstraint("seq", name="pk_warning_changes"),
        schema=SCHEMA,
    )
    for level in LEVELS:
        op.create_index(
            f"ix_warning_changes_{level}_code_seq",
            "warning_changes",
            [f"{level}_code", "seq"],
            schema=SCHEMA,
        )

    op.create_index(
        "ix_warning_changes_warning_id_version",
        "warning_changes",
        ["warning_id", "version"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("warning_changes", schema=SCHEMA)
    op.drop_table("early_warnings", schema=SCHEMA)
    op.drop_table("unit_indicators", schema=SCHEMA)
