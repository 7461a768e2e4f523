"""The early warnings' records: the visits they read and the warnings stored, with their row
codecs (the column order of `warning_visit` and `warning`, as the set-based statements and
COPY take them), and a stored visit placed for the finder (as reported, or as it stands)."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from services.evaluation.warnings.finder import Visit
from shared.early_warning import EarlyWarning, WarningKind
from shared.events import EventRecord, PetitionVisit
from shared.levels import Destination

SCHEMA_VERSION = EarlyWarning.model_fields["schema_version"].default

VISIT_COLUMNS = (
    "event_id",
    "accepted_at",
    "occurred_at",
    "petitioner_ref",
    "reported_county",
    "county",
)
WARNING_COLUMNS = (
    "warning_id",
    "kind",
    "unit_code",
    "scope",
    "cause_at",
    "raised_at",
    "cleared_at",
    "event_ids",
    "detail",
    "version",
)


@dataclass(frozen=True, slots=True)
class StoredVisit:
    event_id: UUID
    accepted_at: datetime
    petitioner_ref: str | None
    unit_code: str
    attributed_code: str
    voided: bool
    occurred_at: datetime
    destination: str | None
    headcount: int


# A visit as the rising rule reads it: its id, the unit it was reported for and the one it is
# attributed to, whether it is voided, and its moment (`finder.Visit.at`).
VisitMoment = tuple[UUID, str, str, bool, int]


@dataclass(frozen=True, slots=True)
class StoredWarning:
    warning_id: UUID
    kind: WarningKind
    unit_code: str
    scope: str
    cause_at: datetime
    raised_at: datetime
    cleared_at: datetime | None
    event_ids: tuple[UUID, ...]
    detail: dict[str, Any]
    version: int

    def message(self) -> EarlyWarning:
        """The warning as published (a rebuild has the database write the same,
        `repository.warning_json`; a test reads both back with `shared.messages`)."""
        return EarlyWarning(
            warning_id=self.warning_id,
            kind=self.kind,
            unit_code=self.unit_code,
            raised_at=self.raised_at,
            cleared_at=self.cleared_at,
            event_ids=[str(i) for i in self.event_ids],
            detail=self.detail,
            version=self.version,
        )


def stored_visit(record: EventRecord) -> StoredVisit | None:
    """A visit recorded just now (none for other events): attributed where reported, not
    voided, as its rows then hold."""
    event = record.event
    if not isinstance(event, PetitionVisit):
        return None
    return StoredVisit(
        event_id=event.event_id,
        accepted_at=record.accepted_at,
        petitioner_ref=event.petitioner_ref,
        unit_code=event.unit_code,
        attributed_code=event.unit_code,
        voided=False,
        occurred_at=event.occurred_at,
        destination=event.destination_level.value,
        headcount=event.headcount,
    )


def visit_of(row: asyncpg.Record) -> StoredVisit:
    return StoredVisit(*row)  # the repository's visit query has the fields' order


def warning_of(row: asyncpg.Record) -> StoredWarning:
    values = dict(row)
    values["kind"] = WarningKind(values["kind"])
    values["event_ids"] = tuple(values["event_ids"])
    detail = values["detail"]  # a session's connection decodes JSON, a bare one does not
    values["detail"] = json.loads(detail) if isinstance(detail, str) else detail
    return StoredWarning(**values)


def warning_record(warning: StoredWarning) -> tuple[Any, ...]:
    return (
        warning.warning_id,
        warning.kind.value,
        warning.unit_code,
        warning.scope,
        warning.cause_at,
        warning.raised_at,
        warning.cleared_at,
        list(warning.event_ids),
        orjson.dumps(warning.detail).decode(),  # jsonb: the key order is the database's
        warning.version,
    )


def reported(visit: StoredVisit) -> Visit:
    """The visit at the unit it was reported for."""
    return placed_at(visit, visit.unit_code)


def standing(visit: StoredVisit) -> Visit | None:
    """The visit at the unit it is attributed to now; none when voided."""
    return None if visit.voided else placed_at(visit, visit.attributed_code)


DESTINATIONS = {d.value: d for d in Destination}  # a dict look-up costs less than the enum's


def placed_at(visit: StoredVisit, unit_code: str) -> Visit:
    """The visit at `unit_code`."""
    return Visit(
        visit.event_id,
        unit_code,
        visit.occurred_at,
        DESTINATIONS[visit.destination] if visit.destination else None,
        visit.headcount,
        visit.petitioner_ref,
    )
