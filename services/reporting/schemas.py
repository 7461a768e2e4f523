"""What the reporting API returns (the public contract of docs/api.md, plus additive fields)."""

from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from services.reporting.readmodel import Counts, criterion_counts
from shared.cadence import Cadence
from shared.early_warning import WarningKind
from shared.events import RatingSource
from shared.levels import Level
from shared.registry.cache import UnitRef


class UnitOut(BaseModel):
    code: str = Field(examples=["340722100201"])
    name: str
    level: Level
    parent_code: str | None


class CountsOut(BaseModel):
    skip_level: int = Field(description="越级上访 (含涉法涉诉)")
    non_reception_site: int = Field(description="非接待场所有关人员")
    collective: int = Field(description="集体上访")
    incident: int = Field(description="极端恶性事件 and 舆论负面炒作 together")


def unit_out(unit: UnitRef) -> UnitOut:
    return UnitOut(code=unit.code, name=unit.name, level=unit.level, parent_code=unit.parent_code)


def counts_out(counts: Counts) -> CountsOut:
    return CountsOut(**criterion_counts(counts))


class UnitStatusOut(BaseModel):
    unit: UnitOut
    period: str
    three_no: bool = Field(description="三无: no event counts against the unit in the period")
    counts: CountsOut = Field(description="Counting events in batches (批次) per criterion")
    people: CountsOut = Field(description="Counting visits in people (人次) per criterion")
    counting_event_ids: list[str] = Field(description="The events that count, for drill-down")
    disputed_event_ids: list[UUID] = Field(
        description="counting events with a live dispute (docs/domain.md section 10)"
    )
    changed_at: datetime | None = Field(description="null while the unit never had a change")
    version: int = Field(description="Grows by one per change; 0: never changed (three-no)")


class LevelFigures(BaseModel):
    total: int = Field(description="Units of the level under and including the unit (registry)")
    three_no: int
    ratio: float | None = Field(description="three_no / total; null when total is 0")
    target: float | None = Field(description="The campaign's target share; null when none")
    target_met: bool | None = Field(description="ratio ≥ target; null when either is null")
    batches: CountsOut = Field(description="Counting batches (批次) of these units, per criterion")
    people: CountsOut = Field(description="Counting people (人次) of these units, per criterion")
    cadence_kept: int = Field(
        0,
        description="Units of the level that keep their meeting cadence as of today: no slot "
        "that has ended without a meeting of theirs",
    )
    ratings: int = Field(0, description="Ratings of these units (each with its subtree)")
    satisfaction_rate: float | None = Field(
        None, description="群众满意率 of those ratings; null when there are none"
    )


class ChildSummaryOut(BaseModel):
    unit: UnitOut
    levels: dict[Level, LevelFigures]


class SummaryOut(BaseModel):
    root: UnitOut | None = Field(description="null: the nation (a national key, no root)")
    period: str
    levels: dict[Level, LevelFigures] = Field(
        description="Per campaign level under and including the root"
    )
    children: list[ChildSummaryOut] = Field(description="The same figures per direct child")
    open_warnings: int = Field(description="Early warnings under the root not cleared yet")
    last_changed_at: datetime | None = Field(
        description="When a status under the root last changed; null if none ever did"
    )


class EligiblePageOut(BaseModel):
    items: list[UnitOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done")


class NotEligibleUnitOut(BaseModel):
    code: str = Field(examples=["340722100201"])
    name: str
    level: Level
    parent_code: str | None
    parent_name: str | None = Field(description="The parent unit's name; null without a parent")
    counts: CountsOut = Field(description="Counting events in batches (批次) per criterion")
    people: CountsOut = Field(description="Counting visits in people (人次) per criterion")
    counting_event_ids: list[str] = Field(description="The events that count, for drill-down")


class NotEligiblePageOut(BaseModel):
    items: list[NotEligibleUnitOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done")


class FeedItemOut(BaseModel):
    unit_code: str
    period: str
    three_no: bool
    version: int
    changed_at: datetime


class FeedPageOut(BaseModel):
    items: list[FeedItemOut]
    next_cursor: str = Field(
        description="Pass as `since` to get the changes after these; returned even when "
        "there were none, so a client can keep polling with it"
    )


class MeetingsOut(BaseModel):
    cadence: Cadence = Field(description="The slot of the unit's level: week, half_month, month")
    required: int = Field(description="Slots that started in the period up to today")
    held: int = Field(description="Ended slots with a meeting of the unit's own")
    missed: list[date] = Field(description="First days of the ended slots without a meeting")
    open: date | None = Field(description="First day of the slot running today, if in the period")
    compliance: float | None = Field(description="held / (held + missed); null before any ended")
    kept: bool = Field(description="No missed slot")


class RatingsOut(BaseModel):
    total: int
    satisfied: int
    basically_satisfied: int
    dissatisfied: int
    rate: float | None = Field(description="(satisfied + basically satisfied) / total; null at 0")


class SatisfactionOut(RatingsOut):
    by_source: dict[RatingSource, RatingsOut] = Field(description="The same per source")


class IndicatorsOut(BaseModel):
    unit: UnitOut
    period: str
    meetings: MeetingsOut
    satisfaction: SatisfactionOut = Field(
        description="Ratings of the unit and its descendants in the period"
    )
    changed_at: datetime | None = Field(description="null while evaluation published nothing")
    version: int = Field(description="The indicators' version; 0 while nothing was published")


class WarningOut(BaseModel):
    warning_id: UUID
    kind: WarningKind
    unit_code: str
    raised_at: datetime
    cleared_at: datetime | None = Field(description="Set on the version that cleared it")
    event_ids: list[str] = Field(description="The events that raised it")
    detail: dict[str, Any]
    version: int = Field(description="Grows by one per raise or clear of this warning")


class WarningPageOut(BaseModel):
    items: list[WarningOut]
    next_cursor: str = Field(
        description="Pass as `since` to get the warnings raised or cleared after these; "
        "returned even when there were none"
    )
