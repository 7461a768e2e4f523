"""cases: the working-day calendar, seeded with every year the chinesecalendar package has

Revision ID: 0001_cases
Revises:
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from shared.calendar.seed import package_days, package_source, package_years

revision = "0001_cases"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "cases"


def upgrade() -> None:
    years = op.create_table(
        "calendar_year",
        sa.Column("year", sa.SmallInteger, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("year", name="pk_calendar_year"),
        schema=SCHEMA,
    )
    days = op.create_table(
        "calendar_day",
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("working", sa.Boolean, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_calendar_day"),
        schema=SCHEMA,
    )
    source = package_source()
    op.execute(
        sa.insert(years).from_select(
            ["year", "source", "loaded_at"],
            sa.select(
                sa.func.unnest(sa.literal(package_years(), sa.ARRAY(sa.SmallInteger))),
                sa.literal(source),
                sa.func.now(),
            ),
        )
    )
    op.bulk_insert(
        days,
        [
            {"day": d.day, "working": d.working, "name": d.name, "source": source}
            for d in package_days()
        ],
    )


def downgrade() -> None:
    op.drop_table("calendar_day", schema=SCHEMA)
    op.drop_table("calendar_year", schema=SCHEMA)
