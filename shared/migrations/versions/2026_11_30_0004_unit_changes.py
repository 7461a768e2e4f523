"""registry: which units each load moved or re-levelled, by registry version

Services that keep something per ancestor (evaluation's effects) read what changed after the
version they last followed.

Revision ID: 0004_shared
Revises: 0003_shared
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_shared"
down_revision = "0003_shared"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "unit_changes",
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("code", sa.CHAR(12), nullable=False),
        sa.PrimaryKeyConstraint("version", "code", name="pk_unit_changes"),
        schema="registry",
    )


def downgrade() -> None:
    op.drop_table("unit_changes", schema="registry")
