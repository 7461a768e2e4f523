"""What the cases API takes and gives."""

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field

from shared.case_steps import Channel, Mediation, Outcome, Rating

CODE_PATTERN = r"^[0-9]{12}$"
NO_NUL = r"^[^\x00]*$"
SHORT = 64
LONG = 4000

AT = Field(
    None,
    description="When it happened (a paper record entered late): not in the future, not "
    "before the case's previous step; clocks use it. Default: now",
)


class RegistrationIn(BaseModel):
    model_config = {"extra": "forbid"}

    case_id: UUID = Field(description="Chosen by the desk: the same id again is a duplicate")
    unit_code: str = Field(pattern=CODE_PATTERN, description="The unit the matter is of (属地)")
    received_at: AwareDatetime = Field(description="When it was received; may be in the past")
    channel: Channel
    category: str = Field(min_length=1, max_length=SHORT, pattern=NO_NUL)
    petitioner_ref: str = Field(
        min_length=1,
        max_length=SHORT,
        pattern=NO_NUL,
        description="身份证号或来访登记号: kept only as a keyed hash",
    )
    headcount: int = Field(1, ge=1, le=10_000)
    summary: str = Field(
        min_length=1,
        max_length=LONG,
        pattern=NO_NUL,
        description="The petitioner's matter in their words: protected, never published",
    )
    event_ids: list[UUID] = Field([], max_length=100, description="The visits it came with")


class RegistrationBatchIn(BaseModel):
    model_config = {"extra": "forbid"}

    cases: list[RegistrationIn] = Field(min_length=1, max_length=1000)


class RegistrationResultOut(BaseModel):
    case_id: UUID
    status: Literal["registered", "repeat", "refused", "duplicate", "rejected"]
    error: dict[str, Any] | None = Field(None, description="Why it was rejected (a problem)")


class RegistrationBatchOut(BaseModel):
    results: list[RegistrationResultOut]


class TargetIn(BaseModel):
    model_config = {"extra": "forbid"}

    unit_code: str = Field(pattern=CODE_PATTERN)
    body: str | None = Field(
        None,
        min_length=1,
        max_length=SHORT,
        description="A handling body of the unit (`sanwu bodies load`); none: forward the "
        "case to the unit, which routes it in turn",
    )


class RouteIn(BaseModel):
    model_config = {"extra": "forbid"}

    to: TargetIn
    reason: str = Field("", max_length=LONG, pattern=NO_NUL)
    at: AwareDatetime | None = AT


class ReasonIn(BaseModel):
    model_config = {"extra": "forbid"}

    reason: str = Field(min_length=1, max_length=LONG, pattern=NO_NUL)
    at: AwareDatetime | None = AT


class OptionalReasonIn(BaseModel):
    model_config = {"extra": "forbid"}

    reason: str = Field("", max_length=LONG, pattern=NO_NUL)
    at: AwareDatetime | None = AT


class AnswerIn(BaseModel):
    """Acceptance or refusal, with the notice to the petitioner (告知)."""

    model_config = {"extra": "forbid"}

    reason: str = Field(min_length=1, max_length=LONG, pattern=NO_NUL)
    notified_at: AwareDatetime = Field(description="When the petitioner was told")
    channel: str | None = Field(
        None, max_length=SHORT, pattern=NO_NUL, description="A refusal: the proper channel"
    )
    at: AwareDatetime | None = AT


class ExtendIn(BaseModel):
    model_config = {"extra": "forbid"}

    days: int = Field(ge=1, le=366, description="At most the campaign's extension (30)")
    reason: str = Field(min_length=1, max_length=LONG, pattern=NO_NUL)
    at: AwareDatetime | None = AT


class NoteIn(BaseModel):
    model_config = {"extra": "forbid"}

    kind: Literal["mediation", "agent", "supervision"]
    mediation: Mediation | None = Field(None, description="With `mediation`: which kind")
    note: str = Field(min_length=1, max_length=LONG, pattern=NO_NUL)
    at: AwareDatetime | None = AT


class ReplyIn(BaseModel):
    model_config = {"extra": "forbid"}

    outcome: Outcome
    text: str = Field(min_length=1, max_length=LONG, pattern=NO_NUL)
    at: AwareDatetime | None = AT


class RateIn(BaseModel):
    model_config = {"extra": "forbid"}

    rating: Rating
    at: AwareDatetime | None = AT


class OwnerOut(BaseModel):
    unit_code: str
    body: str | None


class ClockOut(BaseModel):
    name: str
    started: date
    due: date | None = Field(description="The last day; null while the calendar cannot say")
    due_reason: str | None = None
    state: str = Field(description="running, met, late, overdue (a duty), lapsed (a window)")
    done_at: datetime | None = None
    days_left: int | None = Field(None, description="While running: days to the last day")
    due_soon: bool = Field(False, description="A duty due within 3 days")


class CaseStepOut(BaseModel):
    version: int
    action: str
    at: datetime
    recorded_at: datetime
    key_id: str
    role: str
    scope_code: str | None
    body: str | None
    reason: str
    detail: dict[str, Any]


class CaseOut(BaseModel):
    case_id: UUID
    unit_code: str
    first_receiver: str
    owner: OwnerOut
    received_at: datetime
    channel: str
    category: str
    petitioner_ref: str = Field(description="The keyed hash")
    headcount: int
    event_ids: list[UUID]
    state: str
    repeat_of: UUID | None
    reviews: int = Field(description="Reviews answered: 1 after 复查, 2 after 复核")
    rating: str | None
    summary: str | None = Field(description="Null for keys that may not read it (readers)")
    clocks: list[ClockOut]
    version: int
    registered_at: datetime
    changed_at: datetime
    steps: list[CaseStepOut] = []
    duplicate: bool = False
    actions: list[str] = Field(
        [],
        description="The steps the asking key may take now (`route`, `object`, `accept`, "
        "`decline`, `extend`, `mediation`, `agent`, `supervision`, `reply`, `rate`, "
        "`review-request`, `review`, `close`), by the checks each step makes; empty in lists",
    )


class CaseListOut(BaseModel):
    cases: list[CaseOut]
    next_cursor: str | None = Field(description="Pass it back as `cursor`; null: no more")


class CaseFeedStepOut(CaseStepOut):
    step_id: int
    case_id: UUID
    unit_code: str
    owner: OwnerOut


class CaseFeedPageOut(BaseModel):
    items: list[CaseFeedStepOut]
    next_cursor: str = Field(description="Pass it back as `since` for the steps after these")


class RateOut(BaseModel):
    numerator: int
    denominator: int
    rate: float | None = Field(description="numerator / denominator; null when nothing is due")
    not_yet_due: int = Field(description="Cases not counted yet: their limit is still running")


Rates = dict[str, RateOut]


class LevelRatesOut(BaseModel):
    rates: Rates


class UnitRatesOut(BaseModel):
    unit_code: str
    name: str
    level: str
    rates: Rates


class CaseRatesOut(BaseModel):
    root: str
    name: str
    period: str
    starts_at: datetime
    ends_at: datetime
    rates: Rates = Field(
        description="The whole subtree's: timely_acceptance (及时受理率), on_time_reply "
        "(按期办结率), rating_participation (参评率), satisfaction (满意率), repeat (重复信访率)"
    )
    levels: dict[str, LevelRatesOut] = Field(description="Cases of units of each level")
    children: list[UnitRatesOut] = Field(description="Each direct child's subtree")
