"""Work-record indicators and early warnings as reporting keeps them: checked when they arrive
from their topics, and the cadence of a unit worked out as of a day (docs/domain.md sections 7
and 8)."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson

from services.reporting.readmodel import UnitPath, path_of
from shared.cadence import Cadence, MeetingCadence, cadence_of
from shared.campaign import SHANGHAI, Campaign, rolling_window
from shared.consumer import Record, Rejected
from shared.early_warning import WarningKind
from shared.events import RatingSource
from shared.indicators import RatingCounts, UnitIndicators
from shared.levels import CAMPAIGN_LEVELS, Level
from shared.messages import parse_early_warning, parse_unit_indicators
from shared.registry.cache import UnitRef, UnitRegistry
from shared.status import ROLLING


def period_days(campaign: Campaign, period_id: str, now: datetime) -> tuple[date, date]:
    """The first and last day (Asia/Shanghai) of a period as of `now`. The rolling window
    starts inside its first day, so its slots are those starting from the next day on."""
    if period_id == ROLLING:
        start, end = rolling_window(now)
        return start.astimezone(SHANGHAI).date() + timedelta(days=1), end.astimezone(
            SHANGHAI
        ).date()
    period = campaign.period(period_id)
    assert period is not None, f"no period {period_id}"
    return period.start, period.end


@dataclass(frozen=True, slots=True)
class StoredIndicators:
    unit_code: str
    period: str
    level: Level
    meetings_held: tuple[date, ...]
    ratings: dict[RatingSource, RatingCounts]
    changed_at: datetime
    version: int

    @property
    def key(self) -> tuple[str, str]:
        return self.unit_code, self.period

    def all_ratings(self) -> RatingCounts:
        return RatingCounts(
            satisfied=sum(c.satisfied for c in self.ratings.values()),
            basically_satisfied=sum(c.basically_satisfied for c in self.ratings.values()),
            dissatisfied=sum(c.dissatisfied for c in self.ratings.values()),
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "unit_code": self.unit_code,
            "period": self.period,
            "level": self.level.value,
            "meetings_held": list(self.meetings_held),
            "ratings": {str(s): c.model_dump() for s, c in self.ratings.items()},
            "changed_at": self.changed_at,
            "version": self.version,
        } | self.all_ratings().model_dump()

    @classmethod
    def from_message(cls, message: UnitIndicators, *, level: Level) -> "StoredIndicators":
        return cls(
            unit_code=message.unit_code,
            period=message.period,
            level=level,
            meetings_held=tuple(sorted(set(message.meetings_held))),
            ratings=dict(message.ratings),
            changed_at=message.changed_at,
            version=message.version,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "StoredIndicators":
        ratings = row["ratings"]
        if isinstance(ratings, str):  # asyncpg hands JSONB over as text
            ratings = orjson.loads(ratings)
        return cls(
            unit_code=row["unit_code"],
            period=row["period"],
            level=Level(row["level"]),
            meetings_held=tuple(row["meetings_held"]),
            ratings={RatingSource(s): RatingCounts(**c) for s, c in ratings.items()},
            changed_at=row["changed_at"],
            version=int(row["version"]),
        )


def meetings_of(
    indicators: StoredIndicators | None,
    *,
    cadence: Cadence,
    days: tuple[date, date],
    today: date,
) -> MeetingCadence:
    """A unit without indicators held no meeting: every ended slot is missed."""
    held = indicators.meetings_held if indicators is not None else ()
    return cadence_of(held, cadence=cadence, first=days[0], last=days[1], today=today)


async def registered(
    registry: UnitRegistry, unit_code: str, *, campaign_level: bool = True
) -> UnitRef | Rejected:
    """The unit a message is about, if the registry has it (at a campaign level, unless
    `campaign_level` is false)."""
    unit = await registry.get(unit_code)
    if unit is None:
        return Rejected(f"unit {unit_code} is not in the registry")
    if campaign_level and unit.level not in CAMPAIGN_LEVELS:
        return Rejected(f"unit {unit_code} is a {unit.level}, not a campaign level")
    return unit


async def placed_indicators(record: Record, registry: UnitRegistry) -> StoredIndicators | Rejected:
    """The record's indicators (`parse_unit_indicators`) at its unit's level."""
    message = parse_unit_indicators(record)
    if isinstance(message, Rejected):
        return message
    unit = await registered(registry, message.unit_code)
    if isinstance(unit, Rejected):
        return unit
    return StoredIndicators.from_message(message, level=unit.level)


@dataclass(frozen=True, slots=True)
class StoredWarning:
    warning_id: UUID
    kind: WarningKind
    unit_code: str
    level: Level
    path: UnitPath
    raised_at: datetime
    cleared_at: datetime | None
    event_ids: tuple[str, ...]
    detail: dict[str, Any]
    version: int

    def to_row(self) -> dict[str, Any]:
        return {
            "warning_id": self.warning_id,
            "kind": self.kind.value,
            "unit_code": self.unit_code,
            "raised_at": self.raised_at,
            "cleared_at": self.cleared_at,
            "event_ids": list(self.event_ids),
            "detail": self.detail,
            "version": self.version,
        }


async def placed_warning(record: Record, registry: UnitRegistry) -> StoredWarning | Rejected:
    """The record's warning (`parse_early_warning`) at its unit's place in the registry."""
    warning = parse_early_warning(record)
    if isinstance(warning, Rejected):
        return warning
    unit = await registered(registry, warning.unit_code, campaign_level=False)
    if isinstance(unit, Rejected):
        return unit
    placement = path_of(registry, warning.unit_code)
    assert placement is not None
    level, path = placement
    return StoredWarning(
        warning_id=warning.warning_id,
        kind=warning.kind,
        unit_code=warning.unit_code,
        level=level,
        path=path,
        raised_at=warning.raised_at,
        cleared_at=warning.cleared_at,
        event_ids=tuple(warning.event_ids),
        detail=warning.detail,
        version=warning.version,
    )
