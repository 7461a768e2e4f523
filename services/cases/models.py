"""The cases service's own schema. The calendar: the years it covers (with where they came
from) and the days that differ from Monday to Friday's rule. The migrations create them
(columns and types here as there)."""

import sqlalchemy as sa
from sqlmodel import SQLModel

from shared.outbox import outbox_table

SCHEMA = "cases"
MOMENT = sa.DateTime(timezone=True)

metadata = SQLModel.metadata

calendar_year = sa.Table(
    "calendar_year",
    metadata,
    sa.Column("year", sa.SmallInteger, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("loaded_at", MOMENT, nullable=False),
    schema=SCHEMA,
)

calendar_day = sa.Table(
    "calendar_day",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("working", sa.Boolean, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    schema=SCHEMA,
)

# Disputes' steps, in order, to the disputes topic.
outbox = outbox_table(SCHEMA, metadata)
# Cases' steps, in order, to the cases topic.
case_outbox = outbox_table(SCHEMA, metadata, name="case_outbox")
# The warnings cases' clocks raise and clear, to the warning topic.
warning_outbox = outbox_table(SCHEMA, metadata, name="warning_outbox")
