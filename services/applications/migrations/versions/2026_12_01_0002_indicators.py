"""applications: the work-record indicators per unit and period, as the indicator topic says

Revision ID: 0002_applications
Revises: 0001_applications
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0002_applications"
down_revision = "0001_applications"
branch_labels = None
depends_on = None

SCHEMA = "applications"


def upgrade() -> None:
    op.create_table(
        "unit_indicators",
        sa.Column("unit_code", sa.CHAR(12), nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("meetings_held", ARRAY(sa.Date), nullable=False),
        sa.Column("ratings", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("unit_code", "period", name="pk_unit_indicators"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("unit_indicators", schema=SCHEMA)
