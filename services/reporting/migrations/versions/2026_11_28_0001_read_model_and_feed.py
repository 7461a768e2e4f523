"""reporting read model: unit status, counts per ancestor, status change feed

Revision ID: 0001_reporting
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0001_reporting"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "reporting"
LEVELS = ("province", "city", "county", "township", "village")
CRITERIA = ("skip_level", "non_reception_site", "collective", "incident")


def path_columns() -> list[sa.Column]:
    return [sa.Column(f"{level}_code", sa.CHAR(12), nullable=True) for level in LEVELS]


def figure_columns() -> list[sa.Column]:
    return [
        sa.Column(f"{kind}_{criterion}", sa.BigInteger, nullable=False, server_default="0")
        for kind in ("batches", "people")
        for criterion in CRITERIA
    ]


def upgrade() -> None:
    op.create_table(
        "unit_status",
        sa.Column("unit_code", sa.CHAR(12), nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        *path_columns(),
        sa.Column("three_no", sa.Boolean, nullable=False),
        *figure_columns(),
        sa.Column("counting_event_ids", ARRAY(sa.Text), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column(
            "applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("unit_code", "period", name="pk_unit_status"),
        schema=SCHEMA,
    )
    op.create_table(
        "level_counts",
        sa.Column("ancestor_code", sa.CHAR(12), nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("not_clean", sa.BigInteger, nullable=False, server_default="0"),
        *figure_columns(),
        sa.PrimaryKeyConstraint("ancestor_code", "period", "level", name="pk_level_counts"),
        schema=SCHEMA,
    )
    op.create_table(
        "status_changes",
        sa.Column("seq", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("unit_code", sa.CHAR(12), nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        *path_columns(),
        sa.Column("three_no", sa.Boolean, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_status_changes"),
        schema=SCHEMA,
    )
    for level in LEVELS:
        op.create_index(
            f"ix_status_changes_{level}_code_seq",
            "status_changes",
            [f"{level}_code", "seq"],
            schema=SCHEMA,
        )


def downgrade() -> None:
    op.drop_table("status_changes", schema=SCHEMA)
    op.drop_table("level_counts", schema=SCHEMA)
    op.drop_table("unit_status", schema=SCHEMA)
