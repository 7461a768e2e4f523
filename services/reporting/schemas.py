"""What the reporting API returns (the public contract of api.md, plus additive fields)."""

from datetime import datetime

from pydantic import BaseModel, Field

from shared.levels import Level


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


class UnitStatusOut(BaseModel):
    unit: UnitOut
    period: str
    three_no: bool = Field(description="三无: no event counts against the unit in the period")
    counts: CountsOut = Field(description="Counting events in batches (批次) per criterion")
    people: CountsOut = Field(description="Counting visits in people (人次) per criterion")
    counting_event_ids: list[str] = Field(description="The events that count, for drill-down")
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


class ChildSummaryOut(BaseModel):
    unit: UnitOut
    levels: dict[Level, LevelFigures]


class SummaryOut(BaseModel):
    root: UnitOut
    period: str
    levels: dict[Level, LevelFigures] = Field(
        description="Per campaign level under and including the root"
    )
    children: list[ChildSummaryOut] = Field(description="The same figures per direct child")


class EligiblePageOut(BaseModel):
    items: list[UnitOut]
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
