"""Each step of a case: who may take it, in which state, within which limit, and what it
changes. A step that does not fit is refused with nothing changed; one that fits is a Change
the service records."""

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.cases.cases.clocks import DUTIES, Clock, ClockName, ClockState, latest, running
from services.cases.cases.repository import CaseRow, CaseStepRow
from services.cases.cases.rules import CaseSides
from shared.access.service import Principal
from shared.calendar.rules import local_day
from shared.campaign import CaseLimits
from shared.case_steps import Action, CaseState, Mediation, Outcome, Rating, ReviewLevel
from shared.errors import DependencyUnavailable, InvalidInput, OutOfScope, StateConflict


@dataclass(frozen=True)
class StepRequest:
    action: Action
    at: datetime | None = None
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    state: CaseState
    detail: dict[str, Any] = field(default_factory=dict)
    owner_unit: str | None = None  # the case moves to this unit (with owner_body, or None)
    owner_body: str | None = None
    reviews: int | None = None
    rating: str | None = None


@dataclass(frozen=True)
class Situation:
    """A case as a step finds it."""

    principal: Principal
    case: CaseRow
    steps: list[CaseStepRow]
    clocks: list[Clock]
    request: StepRequest
    at: datetime  # when the step happened
    now: datetime  # when it is recorded

    @property
    def state(self) -> CaseState:
        return CaseState(self.case.state)

    def require_state(self, *states: CaseState) -> None:
        if self.state not in states:
            raise StateConflict(
                f"a case {self.state} cannot be {self.request.action.value.replace('_', ' ')}"
            )

    def within(self, name: ClockName) -> Clock:
        """The window `name` still open on the step's day; refused when it has passed."""
        clock = latest(self.clocks, name)
        if clock is None or clock.done_at is not None:
            raise StateConflict(f"no {name.value} limit is running on this case")
        if clock.due is None:
            raise DependencyUnavailable("calendar", clock.due_reason or "no calendar")
        if local_day(self.at) > clock.due:
            raise TooLate(
                f"too late: the last day was {clock.due}",
                errors=[{"field": "at", "message": "late", "last_day": str(clock.due)}],
            )
        return clock


class TooLate(InvalidInput):
    """A window's last day has passed."""


# The steps a key may be offered, as the API names them.
OFFERED = {
    "route": Action.routed,
    "object": Action.objected,
    "accept": Action.accepted,
    "decline": Action.declined,
    "extend": Action.extended,
    "mediation": Action.mediated,
    "agent": Action.agent,
    "supervision": Action.supervised,
    "reply": Action.replied,
    "rate": Action.rated,
    "review-request": Action.review_requested,
    "review": Action.reviewed,
    "close": Action.closed,
}


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} is required", errors=[{"field": name}])
    return value


def _one_of(value: Any, kind: type, name: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(m.value for m in kind)  # type: ignore[attr-defined]
        raise InvalidInput(f"{name} must be one of {choices}", errors=[{"field": name}]) from None


class Transitions:
    def __init__(self, sides: CaseSides, limits: CaseLimits) -> None:
        self.sides = sides
        self.limits = limits

    def change(self, s: Situation, bodies: set[tuple[str, str]]) -> Change:
        """`bodies`: the (unit, body) a routing names, if loaded."""
        handler = getattr(self, f"_{s.request.action.value}", None)
        if handler is None:
            raise InvalidInput(f"{s.request.action} is not a step one takes")
        if s.state in (CaseState.repeat, CaseState.refused):
            raise StateConflict(f"a {s.state} follows its case: steps go to that one")
        if s.request.action is Action.routed:
            return self._routed(s, bodies)
        change: Change = handler(s)
        return change

    def allowed(self, s: Situation) -> list[str]:
        """The steps the key may take now, by the same checks the steps make: a step counts
        when only what its body must say is missing."""
        found = []
        for name, action in OFFERED.items():
            probe = replace(s, request=StepRequest(action, s.at))
            try:
                self.change(probe, bodies=set())
            except (OutOfScope, StateConflict, DependencyUnavailable, TooLate):
                continue
            except InvalidInput:
                pass
            found.append(name)
        return found

    # --- the owning unit ---------------------------------------------------------------------

    def _routed(self, s: Situation, bodies: set[tuple[str, str]]) -> Change:
        self._owner(s)
        s.require_state(CaseState.registered)
        unit, body = s.request.detail.get("unit_code"), s.request.detail.get("body")
        if body is None:
            raise InvalidInput("a routing names the body", errors=[{"field": "to.body"}])
        if (unit, body) not in bodies:
            raise InvalidInput(f"{unit} has no handling body {body}", errors=[{"field": "to.body"}])
        detail = {"unit_code": unit, "body": body, "from": s.case.owner_unit}
        return Change(CaseState.routed, detail, unit, body)

    def _forwarded(self, s: Situation) -> Change:
        self._owner(s)
        s.require_state(CaseState.registered)
        unit = s.request.detail.get("unit_code")
        if unit is None or unit == s.case.owner_unit:
            raise InvalidInput("the case is with that unit already", errors=[{"field": "to"}])
        return Change(CaseState.registered, {"unit_code": unit}, unit, None)

    def _owner(self, s: Situation) -> None:
        if not self.sides.owns(s.principal, s.case):
            raise OutOfScope("only a desk of the unit the case is with may route it")

    # --- the handling body -------------------------------------------------------------------

    def _body(self, s: Situation) -> None:
        if not self.sides.handles(s.principal, s.case):
            raise OutOfScope("only the body the case is routed to may take this step")

    def _objected(self, s: Situation) -> Change:
        self._body(s)
        s.require_state(CaseState.routed)
        s.within(ClockName.object)
        _text(s.request.reason, "reason")
        sender = self._sender(s)
        return Change(CaseState.registered, {"returned_to": sender}, sender, None)

    @staticmethod
    def _sender(s: Situation) -> str:
        """The unit that routed the case to the body."""
        routed = next(st for st in reversed(s.steps) if st.action == Action.routed)
        sender: str = routed.detail["from"]
        return sender

    def _accepted(self, s: Situation) -> Change:
        return self._answered(s, CaseState.accepted)

    def _declined(self, s: Situation) -> Change:
        return self._answered(s, CaseState.declined)

    def _answered(self, s: Situation, state: CaseState) -> Change:
        self._body(s)
        s.require_state(CaseState.routed)
        _text(s.request.reason, "reason")
        notified_at = s.request.detail.get("notified_at")
        if not isinstance(notified_at, datetime):
            raise InvalidInput(
                "the petitioner's notice needs notified_at", errors=[{"field": "notified_at"}]
            )
        if local_day(notified_at) < local_day(s.at) or notified_at > s.now:
            raise InvalidInput(
                "notified_at is before the day of the decision, or in the future",
                errors=[{"field": "notified_at"}],
            )
        detail = {"notified_at": notified_at.isoformat()}
        if state is CaseState.declined and s.request.detail.get("channel"):
            detail["channel"] = s.request.detail["channel"]
        return Change(state, detail)

    def _extended(self, s: Situation) -> Change:
        self._body(s)
        s.require_state(CaseState.accepted)
        if any(st.action == Action.extended for st in s.steps):
            raise StateConflict("the reply's limit was extended once already")
        days = s.request.detail.get("days")
        if not isinstance(days, int) or not 1 <= days <= self.limits.extension_days:
            raise InvalidInput(
                f"days must be 1 to {self.limits.extension_days}", errors=[{"field": "days"}]
            )
        _text(s.request.reason, "reason")
        return Change(CaseState.accepted, {"days": days})

    def _replied(self, s: Situation) -> Change:
        self._body(s)
        s.require_state(CaseState.accepted)
        outcome = _one_of(s.request.detail.get("outcome"), Outcome, "outcome")
        _text(s.request.reason, "text")
        return Change(CaseState.replied, {"outcome": outcome.value})

    def _mediated(self, s: Situation) -> Change:
        self._body(s)
        s.require_state(CaseState.accepted)
        kind = _one_of(s.request.detail.get("mediation"), Mediation, "mediation")
        _text(s.request.reason, "note")
        return Change(s.state, {"mediation": kind.value})

    def _agent(self, s: Situation) -> Change:
        if not (
            self.sides.handles(s.principal, s.case)
            or self.sides.petitioners_desk(s.principal, s.case)
        ):
            raise OutOfScope("a petition agent's step is recorded by the desk or the body")
        s.require_state(
            CaseState.registered, CaseState.routed, CaseState.accepted, CaseState.replied
        )
        _text(s.request.reason, "note")
        return Change(s.state, {})

    # --- the petitioner's desk ---------------------------------------------------------------

    def _desk(self, s: Situation) -> None:
        if not self.sides.petitioners_desk(s.principal, s.case):
            raise OutOfScope("only a desk over the case's unit records what the petitioner says")

    def _rated(self, s: Situation) -> Change:
        self._desk(s)
        s.require_state(CaseState.replied, CaseState.review_requested)
        if s.case.rating is not None:
            raise StateConflict("the reply was rated already")
        s.within(ClockName.rating)
        rating = _one_of(s.request.detail.get("rating"), Rating, "rating")
        return Change(s.state, {"rating": rating.value}, rating=rating.value)

    def _review_requested(self, s: Situation) -> Change:
        self._desk(s)
        s.require_state(CaseState.replied)
        if s.case.reviews >= 2:
            raise StateConflict("复核 was answered: the case is final")
        s.within(ClockName.review_request)
        level = ReviewLevel.review if s.case.reviews == 0 else ReviewLevel.reexamination
        below = s.case.owner_unit if s.case.reviews == 0 else self._reviewer(s.steps)
        reviewer = self.sides.reviewer_above(below)
        if reviewer is None:
            raise StateConflict(f"no bureau above {below} can review the case")
        return Change(CaseState.review_requested, {"level": level.value, "by": reviewer.code})

    @staticmethod
    def _reviewer(steps: list[CaseStepRow]) -> str:
        asked = next(st for st in reversed(steps) if st.action == Action.review_requested)
        by: str = asked.detail["by"]
        return by

    # --- the bureaus -------------------------------------------------------------------------

    def _reviewed(self, s: Situation) -> Change:
        s.require_state(CaseState.review_requested)
        asked = next(st for st in reversed(s.steps) if st.action == Action.review_requested)
        if not self.sides.is_bureau_of(s.principal, asked.detail["by"]):
            raise OutOfScope("the case is reviewed by another bureau")
        outcome = _one_of(s.request.detail.get("outcome"), Outcome, "outcome")
        _text(s.request.reason, "text")
        detail = {
            "level": asked.detail["level"],
            "outcome": outcome.value,
            "by": asked.detail["by"],
        }
        return Change(CaseState.replied, detail, reviews=s.case.reviews + 1)

    def _supervised(self, s: Situation) -> Change:
        if not self.sides.supervises(s.principal, s.case):
            raise OutOfScope("only a bureau over the unit the case is with may supervise it")
        overdue = [
            c.name.value for c in s.clocks if c.name in DUTIES and c.state is ClockState.overdue
        ]
        if not overdue:
            raise StateConflict("only an overdue case is supervised")
        _text(s.request.reason, "note")
        return Change(s.state, {"overdue": overdue})

    def _closed(self, s: Situation) -> Change:
        if not self.sides.may_close(s.principal, s.case):
            raise OutOfScope("only the petitioner's desk or a bureau over the case may close it")
        s.require_state(CaseState.replied, CaseState.declined)
        if s.state is CaseState.replied and s.case.reviews < 2:
            window = running(s.clocks, ClockName.review_request)
            if window is not None:
                raise StateConflict(f"the petitioner may still ask for review until {window.due}")
        return Change(CaseState.closed, {})
