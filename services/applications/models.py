"""The applications service's own schema: its view of the unit statuses (written only by its
status consumer and its rebuild), the applications with their units, the history of every
step (kept forever) and the outbox that publishes each step to the applications topic."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from shared.db import NAMING_CONVENTION
from shared.outbox import outbox_table

SCHEMA = "applications"

metadata = sa.MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)

# The latest status per unit and period, as the status topic says. No row: three-no, no events.
# `counts` and `people` are the status's figures per criterion ({} until a status arrives).
unit_status = sa.Table(
    "unit_status",
    metadata,
    sa.Column("unit_code", sa.CHAR(12), primary_key=True),
    sa.Column("period", sa.Text, primary_key=True),
    sa.Column("three_no", sa.Boolean, nullable=False),
    sa.Column("counting_event_ids", ARRAY(sa.Text), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("counts", JSONB, nullable=False, server_default="{}"),
    sa.Column("people", JSONB, nullable=False, server_default="{}"),
)

application = sa.Table(
    "application",
    metadata,
    sa.Column("application_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("county_code", sa.CHAR(12), nullable=False),
    sa.Column("period", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

application_unit = sa.Table(
    "application_unit",
    metadata,
    sa.Column("application_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("unit_code", sa.CHAR(12), primary_key=True),
    sa.Column("period", sa.Text, nullable=False),
    sa.Column("self_evaluation", sa.Text, nullable=False),
    sa.Column("rectifications", JSONB, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("evidence", JSONB, nullable=True),
    sa.Column("decision_reason", sa.Text, nullable=True),
    sa.Column("flag_since", sa.DateTime(timezone=True), nullable=True),
    sa.Column("flag_event_ids", ARRAY(sa.Text), nullable=True),
)

step = sa.Table(
    "step",
    metadata,
    sa.Column("step_id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("application_id", UUID(as_uuid=True), nullable=False),
    sa.Column("unit_code", sa.CHAR(12), nullable=True),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("key_id", sa.Text, nullable=True),
    sa.Column("role", sa.Text, nullable=True),
    sa.Column("scope_code", sa.CHAR(12), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("detail", JSONB, nullable=False, server_default="{}"),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

outbox = outbox_table(SCHEMA, metadata)
