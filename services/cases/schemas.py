from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from shared.dispute_steps import Decision, Grounds

CODE_PATTERN = r"^[0-9]{12}$"
NO_NUL = r"^[^\x00]*$"


class CalendarDayOut(BaseModel):
    date: date
    name: str
    source: str = Field(
        description="Where the day came from: the package and its version, or "
        "the local file it was loaded from"
    )


class CalendarYearOut(BaseModel):
    year: int
    source: str = Field(description="What last loaded the year")
    loaded_at: datetime
    working_days: int = Field(description="How many days of the year are worked")
    days_off: list[CalendarDayOut] = Field(
        description="Statutory days off, the weekend days of a holiday included"
    )
    make_up_working_days: list[CalendarDayOut] = Field(
        description="Weekend days worked in exchange for a day off (调休上班)"
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "year": 2026,
                    "source": "chinesecalendar 1.11.0",
                    "loaded_at": "2026-12-07T08:00:00+08:00",
                    "working_days": 250,
                    "days_off": [
                        {"date": "2026-10-01", "name": "国庆节", "source": "chinesecalendar 1.11.0"}
                    ],
                    "make_up_working_days": [
                        {"date": "2026-10-10", "name": "国庆节", "source": "chinesecalendar 1.11.0"}
                    ],
                }
            ]
        }
    }


class DisputeIn(BaseModel):
    model_config = {"extra": "forbid"}

    dispute_id: UUID = Field(description="Chosen by the filer")
    event_id: UUID
    grounds: Grounds
    proposed_unit: str | None = Field(
        None, pattern=CODE_PATTERN, description="With `not_ours`: the unit it belongs to"
    )
    duplicate_of: UUID | None = Field(None, description="With `duplicate`: the other event")
    statement: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)


class RulingIn(BaseModel):
    model_config = {"extra": "forbid"}

    decision: Decision
    new_unit: str | None = Field(
        None,
        pattern=CODE_PATTERN,
        description="With `uphold_reattribute`: within the bureau's scope",
    )
    reason: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)


class ReasonIn(BaseModel):
    model_config = {"extra": "forbid"}

    reason: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)


class StepOut(BaseModel):
    version: int
    action: str
    at: datetime
    key_id: str
    role: str
    scope_code: str | None
    reason: str
    detail: dict[str, Any]


class DisputeOut(BaseModel):
    dispute_id: UUID
    event_id: UUID
    unit_code: str
    grounds: str
    proposed_unit: str | None
    duplicate_of: UUID | None
    statement: str
    state: str
    decider_code: str = Field(description="The bureau that decides")
    decision: dict[str, Any] | None
    review: dict[str, Any] | None = Field(description="The review's decision, final")
    dispute_until: date | None = Field(
        description="The last day to dispute the event; null while the calendar cannot say"
    )
    review_request_until: date | None
    version: int
    filed_at: datetime
    changed_at: datetime
    steps: list[StepOut] = []
    actions: list[str] = Field(
        [],
        description="The steps the asking key may take now (`decide`, `review`, `withdraw`, "
        "`review-request`), by the rules each step checks; empty in lists",
    )


class DisputeListOut(BaseModel):
    disputes: list[DisputeOut]


class FeedStepOut(StepOut):
    step_id: int
    dispute_id: UUID
    event_id: UUID
    unit_code: str


class FeedPageOut(BaseModel):
    items: list[FeedStepOut]
    next_cursor: str = Field(description="Pass it back as `since` for the steps after these")
