"""Evaluation's records: what its repositories read and write, and their row codecs (the
column order of the tables, as the set-based statements and COPY take them)."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.evaluation.models import RATING_COLUMNS
from services.evaluation.rules import Facts
from shared.events import EventType, Rating, RatingSource
from shared.levels import Destination
from shared.status import UnitStatus

COUNTED = ("skip_level", "non_reception_site", "collective", "incident")
CONTENT = (*COUNTED, *(f"{name}_people" for name in COUNTED), "counting_event_ids")
STATUS_COLUMNS = ("unit_code", "period", "three_no", *CONTENT, "changed_at", "version")
STATUS_SCHEMA_VERSION = UnitStatus.model_fields["schema_version"].default
INDICATOR_CONTENT = ("meetings_held", *RATING_COLUMNS)
INDICATOR_COLUMNS = ("unit_code", "period", *INDICATOR_CONTENT, "changed_at", "version")
PENDING = "pending"  # a correction's state while its target has not arrived
APPLIED = "applied"
REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class StoredEvent:
    event_id: UUID
    known: bool
    facts: Facts | None
    unit_code: str | None
    attributed_code: str | None
    occurred_at: datetime | None
    voided: bool
    noticed_at: datetime | None = None  # a counting event's notice (the dispute window's start)


@dataclass(frozen=True, slots=True)
class CorrectionFacts:
    """What a correction says, as posted and accepted."""

    event_id: UUID
    target_event_id: UUID
    type: EventType
    new_unit_code: str | None
    occurred_at: datetime
    accepted_at: datetime


@dataclass(frozen=True, slots=True)
class StoredCorrection(CorrectionFacts):
    unit_code: str | None
    scope_code: str | None  # the sender key's scope; None: everywhere
    sender_known: bool  # whether the key it came from exists
    state: str  # pending, applied or refused
    reason: str | None
    dispute_id: UUID | None = None  # the dispute whose upheld ruling this is


# A dispute as its last step left it: (dispute_id, event_id, state, outcome, new_unit_code,
# decider_code, decided_at, version), in DISPUTE_COLUMNS' order.
DisputeRecord = tuple[UUID, UUID, str, str | None, str | None, str | None, datetime | None, int]
DISPUTE_COLUMNS = (
    "dispute_id",
    "event_id",
    "state",
    "outcome",
    "new_unit_code",
    "decider_code",
    "decided_at",
    "version",
)


# Never changed once made; not frozen, because a frozen dataclass is several times slower to
# make and a rebuild makes one per effect.
@dataclass(slots=True, unsafe_hash=True)
class Effect:
    """An event counting against one unit, under `criteria` (bits of `Criterion`); for a work
    record (criteria 0), the meeting's slot at its own unit or the rating at each unit of its
    chain."""

    event_id: UUID
    unit_code: str
    criteria: int
    headcount: int
    occurred_at: datetime
    slot: date | None = None  # the first day of the meeting's slot
    source: str | None = None  # a rating's source and rating
    rating: str | None = None

    @property
    def is_work_record(self) -> bool:
        return not self.criteria


@dataclass(frozen=True, slots=True)
class StatusWindow:
    """A (unit, period) to recompute, with the period's bounds: [starts_at, ends_at)."""

    unit_code: str
    period: str
    starts_at: datetime
    ends_at: datetime | None  # open (the rolling period)


@dataclass(frozen=True, slots=True)
class NewEvent:
    event_id: UUID
    facts: Facts
    unit_code: str
    occurred_at: datetime
    noticed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewCorrection(CorrectionFacts):
    unit_code: str
    key_id: str


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    event_id: UUID
    unit_code: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class StateChange:
    """A correction's new state, with the reason when it is refused."""

    event_id: UUID
    state: str
    reason: str | None


def event_of(row: asyncpg.Record) -> StoredEvent:
    facts = None
    if row["known"]:
        destination = row["destination"]
        facts = Facts(
            type=EventType(row["type"]),
            destination=Destination(destination) if destination else None,
            headcount=row["headcount"],
            skip_level=row["skip_level"],
            non_reception_site=row["non_reception_site"],
            rating=Rating(row["rating"]) if row["rating"] else None,
            source=RatingSource(row["source"]) if row["source"] else None,
        )
    return StoredEvent(
        event_id=row["event_id"],
        known=row["known"],
        facts=facts,
        unit_code=row["unit_code"],
        attributed_code=row["attributed_code"],
        occurred_at=row["occurred_at"],
        voided=row["voided"],
        noticed_at=row["noticed_at"],
    )


def correction_of(row: asyncpg.Record) -> StoredCorrection:
    return StoredCorrection(
        event_id=row["event_id"],
        target_event_id=row["target_event_id"],
        type=EventType(row["type"]),
        new_unit_code=row["new_unit_code"],
        occurred_at=row["occurred_at"],
        accepted_at=row["accepted_at"],
        unit_code=row["unit_code"],
        scope_code=row["scope_code"],
        sender_known=row["sender_known"],
        state=row["state"],
        reason=row["reason"],
        dispute_id=row.get("dispute_id"),
    )


def event_record(event: NewEvent) -> tuple[Any, ...]:
    """A known event's row as COPY and `upsert_events` take it."""
    return known_event_row(
        event.event_id, event.unit_code, event.occurred_at, event.facts, event.noticed_at
    )


def known_event_row(
    event_id: UUID, unit_code: str, occurred_at: datetime, facts: Facts, noticed: datetime | None
) -> tuple[Any, ...]:
    """`event_record` of the event's parts, for a rebuild that has no `NewEvent` to make."""
    return (
        event_id,
        True,
        facts.type.value,
        unit_code,
        unit_code,
        occurred_at,
        facts.destination.value if facts.destination else None,
        facts.headcount,
        facts.skip_level,
        facts.non_reception_site,
        facts.rating.value if facts.rating else None,
        facts.source.value if facts.source else None,
        noticed,
        False,
    )


def correction_record(correction: NewCorrection) -> tuple[Any, ...]:
    """A correction's row as COPY and `add_corrections` take it."""
    return (
        correction.event_id,
        correction.target_event_id,
        correction.type.value,
        correction.new_unit_code,
        correction.occurred_at,
        correction.accepted_at,
        correction.unit_code,
        correction.key_id,
        PENDING,
        None,
    )


EVENT_COLUMNS = (
    "event_id",
    "known",
    "type",
    "unit_code",
    "attributed_code",
    "occurred_at",
    "destination",
    "headcount",
    "skip_level",
    "non_reception_site",
    "rating",
    "source",
    "noticed_at",
    "voided",
)
EFFECT_COLUMNS = (
    "event_id",
    "unit_code",
    "criteria",
    "headcount",
    "occurred_at",
    "slot",
    "source",
    "rating",
)
CORRECTION_COLUMNS = (
    "event_id",
    "target_event_id",
    "type",
    "new_unit_code",
    "occurred_at",
    "accepted_at",
    "unit_code",
    "key_id",
    "state",
    "reason",
)


def effect_record(effect: Effect) -> tuple[Any, ...]:
    """An effect's row as COPY and `insert_effects` take it."""
    return (
        effect.event_id,
        effect.unit_code,
        effect.criteria,
        effect.headcount,
        effect.occurred_at,
        effect.slot,
        effect.source,
        effect.rating,
    )


def stub_record(event_id: UUID) -> tuple[Any, ...]:
    """A placeholder for a correction's target not seen yet."""
    return (event_id, False, None, None, None, None, None, 0, False, False, None, None, None, False)
