"""A step of a case (信访事项), as published on the cases topic.

The cases service records every step (what, when it happened, who recorded it, when and why)
with the case as it stands after it, and publishes both through its outbox, keyed by the case,
so that every step of one case is read in order. The summary the petitioner gave is protected
free text and never leaves the service; the petitioner is named only by the keyed hash.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class Channel(StrEnum):
    visit = "visit"
    letter = "letter"
    phone = "phone"
    online = "online"


class CaseState(StrEnum):
    registered = "registered"  # owned by a unit, to be routed or forwarded
    routed = "routed"  # with a handling body, to be accepted or declined
    accepted = "accepted"  # being handled, to be replied to
    declined = "declined"  # not accepted, the petitioner told the proper channel
    replied = "replied"  # answered (or a review answered): to be rated, reviewed or closed
    review_requested = "review_requested"  # 复查 or 复核 asked for
    closed = "closed"  # 终结: the same matter is not accepted again
    repeat = "repeat"  # a new registration of an open case's matter: follows that case
    refused = "refused"  # a new registration of a closed case's matter


# The states in which a case still counts as open for repeats.
OPEN = frozenset(
    {
        CaseState.registered,
        CaseState.routed,
        CaseState.accepted,
        CaseState.declined,
        CaseState.replied,
        CaseState.review_requested,
    }
)


class Action(StrEnum):
    registered = "registered"
    routed = "routed"  # to a handling body of a unit
    forwarded = "forwarded"  # to another unit, which routes it in turn
    objected = "objected"  # by the body: outside its remit, back to the sender
    accepted = "accepted"
    declined = "declined"
    extended = "extended"  # the reply's limit, once
    mediated = "mediated"
    agent = "agent"  # a step by a petition agent (信访代理员)
    supervised = "supervised"  # a supervision note (督办) by a bureau above
    replied = "replied"
    rated = "rated"
    review_requested = "review_requested"
    reviewed = "reviewed"
    closed = "closed"


# Steps that record what was done without changing the case's state.
NOTES = frozenset({Action.mediated, Action.agent, Action.supervised})


class Mediation(StrEnum):
    people = "people"  # 人民调解
    administrative = "administrative"  # 行政调解
    judicial = "judicial"  # 司法调解
    joint = "joint"  # 联合调解


class Outcome(StrEnum):
    support = "support"
    explain = "explain"
    reject = "reject"


class Rating(StrEnum):
    satisfied = "satisfied"
    basically_satisfied = "basically_satisfied"
    dissatisfied = "dissatisfied"


class ReviewLevel(StrEnum):
    review = "review"  # 复查, by the level above the one that replied
    reexamination = "reexamination"  # 复核, by the level above that


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: UUID
    unit_code: str  # 属地
    first_receiver: str  # the registering unit (首接责任)
    owner_unit: str
    owner_body: str | None
    received_at: datetime
    channel: Channel
    category: str
    petitioner_ref: str  # the keyed hash
    headcount: int
    event_ids: list[UUID]
    state: CaseState
    repeat_of: UUID | None
    reviews: int  # answered: 0, 1 after 复查, 2 after 复核
    rating: Rating | None
    version: int
    registered_at: datetime
    changed_at: datetime


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    action: Action
    at: datetime  # when it happened (on paper, perhaps earlier than recorded)
    recorded_at: datetime
    key_id: str
    role: str
    scope_code: str | None
    body: str | None
    reason: str
    detail: dict[str, Any]


class CaseStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = 1
    step_id: int
    case: Case
    step: Step

    @property
    def key(self) -> bytes:
        return str(self.case.case_id).encode()
