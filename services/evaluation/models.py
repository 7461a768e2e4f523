"""Evaluation's own schema.

- `event`: one row per counting event (visit, incident, public opinion) with the facts the rules
  read, where it is attributed now and whether it is voided. A row with `known = false` is a
  placeholder for the target of a correction that arrived first. Together with `correction`
  this is also the record of what has been applied.
- `correction`: every void and re-attribution with its sender's key and its state: `pending`
  while its target has not arrived, then `applied` or `refused` (with the reason), as
  `shared.corrections.resolve` decides.
- `effect`: for each active event, each unit on its attributed chain that it counts against,
  with the criteria met there. A status is an aggregate of these rows over the period. A work
  record's rows have no criteria (0): a meeting's one row at its own unit names its slot, a
  rating has a row at each unit of its chain with its source and rating.
- `status`: per (unit, period) that ever had a counting event; a unit without a row is clean
  at version 0.
- `indicators`: per (unit, period) that ever had a work record: the slots its own meetings
  fell in and the ratings of its subtree per source and rating, versioned like `status`.
- `warning_visit`: what the early warnings read from a visit beyond `event` (when intake
  accepted it, the petitioner's keyed hash, its county as reported and as attributed now).
- `rolling_expiry`: the start of the rolling window at the last expiry pass.
- `rolling_pending`: effects dated after the moment their rolling status was computed; the
  expiry pass recomputes their units when that time comes.
- `registry_followed`: the registry version the effects follow; the units a later load moved
  (`registry.unit_changes`) are re-evaluated.
- `outbox`: status changes waiting to be published; `indicator_outbox`: indicator changes;
  `warning_outbox`: early-warning changes (the `warning` table itself is read and written as
  set-based SQL only: `warnings/repository.py`).
- `dispute`: each dispute of a counted event as its last step left it (from the disputes
  topic): whether it is live, and the correction its ruling in force makes (`outcome`, by the
  deciding bureau), which `correction`'s readers take as one more correction of the event. Not
  rebuilt: the rebuild applies the outcomes kept here.
- `dead_letter`: events the consumer could not apply and sent to the dead-letter topic.

The migrations create the same tables; the rebuild creates fresh copies from these definitions
(`tables_in`) and swaps them in, so the two must stay equal (a test compares them).
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from shared.db import NAMING_CONVENTION
from shared.events import Rating, RatingSource
from shared.outbox import outbox_table

SCHEMA = "evaluation"
# Rebuilt from scratch, then swapped in; the other tables stay.
REBUILT_TABLES = ("event", "correction", "effect", "status", "indicators", "warning_visit")
# The indicators' rating counts: one column per source and rating, named `source_rating`.
RATING_COLUMNS = {
    f"{source}_{rating}": (source, rating) for source in RatingSource for rating in Rating
}


def tables_in(schema: str, metadata: sa.MetaData | None = None) -> dict[str, sa.Table]:
    metadata = metadata or sa.MetaData(naming_convention=NAMING_CONVENTION)
    code = sa.String(12)
    moment = sa.DateTime(timezone=True)
    event = sa.Table(
        "event",
        metadata,
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("known", sa.Boolean, nullable=False),
        sa.Column("type", sa.String(24)),
        sa.Column("unit_code", code),
        sa.Column("attributed_code", code),
        sa.Column("occurred_at", moment),
        sa.Column("destination", sa.String(16)),
        sa.Column("headcount", sa.Integer, nullable=False, server_default="0"),
        sa.Column("skip_level", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("non_reception_site", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("voided", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("rating", sa.String(24)),
        sa.Column("source", sa.String(16)),
        sa.Column("noticed_at", moment),  # a counting event's, when disputes may start
        sa.Index("ix_event_attributed_code", "attributed_code"),
        schema=schema,
    )
    correction = sa.Table(
        "correction",
        metadata,
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("target_event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("new_unit_code", code),
        sa.Column("occurred_at", moment, nullable=False),
        sa.Column("accepted_at", moment, nullable=False),
        sa.Column("unit_code", code),  # the correction's own unit
        sa.Column("key_id", sa.String(16)),  # the key intake accepted it from
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("reason", sa.Text),  # why it was refused
        sa.Index("ix_correction_target_event_id", "target_event_id"),
        schema=schema,
    )
    effect = sa.Table(
        "effect",
        metadata,
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("unit_code", code, primary_key=True),
        sa.Column("criteria", sa.SmallInteger, nullable=False),
        sa.Column("headcount", sa.Integer, nullable=False),
        sa.Column("occurred_at", moment, nullable=False),
        sa.Column("slot", sa.Date),
        sa.Column("source", sa.String(16)),
        sa.Column("rating", sa.String(24)),
        sa.Index("ix_effect_unit_code_occurred_at", "unit_code", "occurred_at"),
        sa.Index("ix_effect_occurred_at", "occurred_at"),
        schema=schema,
    )
    counts = ("skip_level", "non_reception_site", "collective", "incident")
    status = sa.Table(
        "status",
        metadata,
        sa.Column("unit_code", code, primary_key=True),
        sa.Column("period", sa.String(32), primary_key=True),
        sa.Column("three_no", sa.Boolean, nullable=False),
        *[sa.Column(name, sa.Integer, nullable=False) for name in counts],
        *[sa.Column(f"{name}_people", sa.Integer, nullable=False) for name in counts],
        sa.Column("counting_event_ids", ARRAY(UUID(as_uuid=True)), nullable=False),
        sa.Column("changed_at", moment, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        schema=schema,
    )
    indicators = sa.Table(
        "indicators",
        metadata,
        sa.Column("unit_code", code, primary_key=True),
        sa.Column("period", sa.String(32), primary_key=True),
        sa.Column("meetings_held", ARRAY(sa.Date), nullable=False),
        *[sa.Column(name, sa.Integer, nullable=False) for name in RATING_COLUMNS],
        sa.Column("changed_at", moment, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        schema=schema,
    )
    warning_visit = sa.Table(
        "warning_visit",
        metadata,
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("accepted_at", moment, nullable=False),
        sa.Column("occurred_at", moment, nullable=False),
        sa.Column("petitioner_ref", sa.Text),
        sa.Column("reported_county", code, nullable=False),
        sa.Column("county", code),
        sa.Index("ix_warning_visit_petitioner_ref", "petitioner_ref"),
        sa.Index("ix_warning_visit_reported_county_occurred_at", "reported_county", "occurred_at"),
        sa.Index("ix_warning_visit_county_occurred_at", "county", "occurred_at"),
        schema=schema,
    )
    return {
        "event": event,
        "correction": correction,
        "effect": effect,
        "status": status,
        "indicators": indicators,
        "warning_visit": warning_visit,
    }


metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
tables = tables_in(SCHEMA, metadata)
rolling_expiry = sa.Table(
    "rolling_expiry",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
    schema=SCHEMA,
)
rolling_pending = sa.Table(
    "rolling_pending",
    metadata,
    sa.Column("unit_code", sa.String(12), primary_key=True),
    sa.Column("occurred_at", sa.DateTime(timezone=True), primary_key=True),
    schema=SCHEMA,
)
registry_followed = sa.Table(
    "registry_followed",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    schema=SCHEMA,
)
dead_letter = sa.Table(
    "dead_letter",
    metadata,
    sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("unit_code", sa.String(12)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column(
        "dead_lettered_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    schema=SCHEMA,
)
dispute = sa.Table(
    "dispute",
    metadata,
    sa.Column("dispute_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("event_id", UUID(as_uuid=True), nullable=False),
    sa.Column("state", sa.String(24), nullable=False),
    sa.Column("outcome", sa.String(24)),  # event_voided or event_reattributed, when upheld
    sa.Column("new_unit_code", sa.String(12)),
    sa.Column("decider_code", sa.String(12)),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Index("ix_dispute_event_id", "event_id"),
    schema=SCHEMA,
)
outbox = outbox_table(SCHEMA, metadata)
indicator_outbox = outbox_table(SCHEMA, metadata, name="indicator_outbox")
warning_outbox = outbox_table(SCHEMA, metadata, name="warning_outbox")
