"""A step of a dispute of a counted event, as published on the disputes topic.

The cases service records every step (who, what, when and why) with the dispute as it stands
after it, and publishes both through its outbox, keyed by the disputed event, so that every
step of the disputes of one event is read in order. Evaluation follows the ruling in force
(`DisputeStep.outcome`), reporting lists the live disputes (`DisputeStep.live`), and the audit
log keeps every step.
"""

from collections.abc import Iterable
from datetime import date, datetime
from enum import StrEnum
from typing import Any, NamedTuple
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class Grounds(StrEnum):
    not_ours = "not_ours"
    facts = "facts"
    duplicate = "duplicate"
    other = "other"


class Decision(StrEnum):
    uphold_void = "uphold_void"
    uphold_reattribute = "uphold_reattribute"
    reject = "reject"


class State(StrEnum):
    filed = "filed"
    decided = "decided"
    review_requested = "review_requested"
    reviewed = "reviewed"
    withdrawn = "withdrawn"


class Action(StrEnum):
    filed = "filed"
    decided = "decided"
    review_requested = "review_requested"
    reviewed = "reviewed"
    withdrawn = "withdrawn"


# Until decided, and again while a review is asked for, the event is disputed.
LIVE = frozenset({State.filed, State.review_requested})


class Ruling(BaseModel):
    """A decision or a review: what, why, by which bureau and when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision: Decision
    new_unit: str | None = None
    reason: str
    by: str
    at: datetime


class Outcome(NamedTuple):
    """What an upheld ruling does to the event, as the deciding bureau's correction would:
    the correction type and, for a re-attribution, the new unit."""

    type: str  # event_voided or event_reattributed
    new_unit_code: str | None
    decider_code: str
    decided_at: datetime


class Dispute(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dispute_id: UUID
    event_id: UUID
    unit_code: str
    grounds: Grounds
    proposed_unit: str | None
    duplicate_of: UUID | None
    statement: str
    filer_scope: str
    decider_code: str
    state: State
    decision: Ruling | None
    review_request_until: date | None
    review: Ruling | None
    version: int
    filed_at: datetime
    changed_at: datetime


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    action: Action
    at: datetime
    key_id: str
    role: str
    scope_code: str | None
    reason: str
    detail: dict[str, Any]


class DisputeStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = 1
    step_id: int
    dispute: Dispute
    step: Step

    @property
    def key(self) -> bytes:
        return str(self.dispute.event_id).encode()

    @property
    def live(self) -> bool:
        return self.dispute.state in LIVE

    @property
    def ruling(self) -> Ruling | None:
        """The ruling in force: the review's once made (it replaces the decision and is
        final), else the decision while it stands (also while its review is asked for)."""
        dispute = self.dispute
        if dispute.state is State.reviewed:
            return dispute.review
        if dispute.state in (State.decided, State.review_requested):
            return dispute.decision
        return None

    @property
    def outcome(self) -> Outcome | None:
        """The correction the ruling in force makes; None when nothing is upheld."""
        ruling = self.ruling
        if ruling is None or ruling.decision is Decision.reject:
            return None
        if ruling.decision is Decision.uphold_void:
            return Outcome("event_voided", None, ruling.by, ruling.at)
        return Outcome("event_reattributed", ruling.new_unit, ruling.by, ruling.at)


def newest_per_dispute(steps: Iterable[DisputeStep]) -> list[DisputeStep]:
    """The step of each dispute with the highest version: what the dispute is after them all,
    whatever order they came in."""
    newest: dict[UUID, DisputeStep] = {}
    for step in steps:
        found = newest.get(step.dispute.dispute_id)
        if found is None or step.dispute.version > found.dispute.version:
            newest[step.dispute.dispute_id] = step
    return list(newest.values())
