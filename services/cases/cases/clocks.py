"""A case's clocks, read from its steps, without I/O.

Each limit of a case is a clock: started by a step (or the receipt), due on the last day of its
limit on the working-day calendar, done by the step that answers it. Duties are the owner's
(route, accept, reply, review): done in time they are met, done after their last day late, not
done after it overdue. Windows are another side's chance (object, rating, review_request): used
in time they are met, past their last day unused they have lapsed, and a step that comes later
is refused. A clock whose last day falls in a year the calendar does not cover has no due date
yet, and says why.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from shared.calendar.rules import Deadline, WorkingCalendar, last_day, local_day
from shared.campaign import CaseLimits, Limit
from shared.case_steps import Action

DUE_SOON_DAYS = 3  # a duty due within this many days raises a warning


class ClockName(StrEnum):
    route = "route"
    object = "object"
    accept = "accept"
    reply = "reply"
    rating = "rating"
    review_request = "review_request"
    review = "review"


DUTIES = frozenset({ClockName.route, ClockName.accept, ClockName.reply, ClockName.review})


class ClockState(StrEnum):
    running = "running"
    met = "met"
    late = "late"
    overdue = "overdue"  # a duty past its last day, not done
    lapsed = "lapsed"  # a window past its last day, unused
    undetermined = "undetermined"  # its last day is in a year the calendar lacks


@dataclass(frozen=True, slots=True)
class StepFact:
    """What the clocks need of a step."""

    action: Action
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Clock:
    name: ClockName
    started: date
    due: date | None
    state: ClockState
    done_at: datetime | None = None
    due_reason: str | None = None  # why there is no due date yet

    @property
    def is_duty(self) -> bool:
        return self.name in DUTIES

    @property
    def pending(self) -> bool:
        return self.done_at is None and self.state is not ClockState.lapsed

    def days_left(self, today: date) -> int | None:
        """Days to the last day of a clock still running (negative: overdue)."""
        if self.due is None or not self.pending:
            return None
        return (self.due - today).days

    def due_soon(self, today: date) -> bool:
        left = self.days_left(today)
        return (
            self.is_duty
            and self.state is ClockState.running
            and left is not None
            and 0 <= left <= DUE_SOON_DAYS
        )


@dataclass(slots=True)
class _Started:
    name: ClockName
    started: date
    limit: Limit
    extension_days: int = 0
    done_at: datetime | None = None


class _Walk:
    """The steps in order, each starting, answering or cancelling clocks."""

    def __init__(self, limits: CaseLimits) -> None:
        self.limits = limits
        self.running: dict[ClockName, _Started] = {}
        self.kept: list[_Started] = []

    def start(self, name: ClockName, at: datetime) -> None:
        started = _Started(name, local_day(at), getattr(self.limits, name.value))
        self.running[name] = started
        self.kept.append(started)

    def done(self, name: ClockName, at: datetime) -> None:
        started = self.running.pop(name, None)
        if started is not None:
            started.done_at = at

    def cancel(self, name: ClockName) -> None:
        """The clock stops mattering (the body answered otherwise): it leaves the record."""
        started = self.running.pop(name, None)
        if started is not None:
            self.kept.remove(started)

    def step(self, fact: StepFact) -> None:
        at, action = fact.at, fact.action
        if action is Action.registered:
            self.start(ClockName.route, at)
        elif action is Action.routed:
            self.done(ClockName.route, at)
            self.start(ClockName.object, at)
            self.start(ClockName.accept, at)
        elif action is Action.forwarded:
            self.done(ClockName.route, at)
            self.start(ClockName.route, at)
        elif action is Action.objected:
            self.done(ClockName.object, at)
            self.cancel(ClockName.accept)
            self.start(ClockName.route, at)
        elif action in (Action.accepted, Action.declined):
            self.cancel(ClockName.object)
            notified = datetime.fromisoformat(fact.detail.get("notified_at") or at.isoformat())
            self.done(ClockName.accept, max(at, notified))
            if action is Action.accepted:
                self.start(ClockName.reply, at)
        elif action is Action.extended and ClockName.reply in self.running:
            self.running[ClockName.reply].extension_days = int(fact.detail["days"])
        elif action is Action.replied:
            self.done(ClockName.reply, at)
            self.start(ClockName.rating, at)
            self.start(ClockName.review_request, at)
        elif action is Action.rated:
            self.done(ClockName.rating, at)
        elif action is Action.review_requested:
            self.done(ClockName.review_request, at)
            self.start(ClockName.review, at)
        elif action is Action.reviewed:
            self.done(ClockName.review, at)
            if fact.detail.get("level") == "review":  # 复查 answered: 复核 may be asked
                self.start(ClockName.review_request, at)
        elif action is Action.closed:
            for name in list(self.running):
                if name in DUTIES:
                    self.done(name, at)
                else:
                    self.cancel(name)


def due_of(calendar: WorkingCalendar, started: date, limit: Limit, extension_days: int) -> Deadline:
    """The last day of a limit; an extension adds its days after the original last day."""
    deadline = last_day(calendar, started, limit)
    if not extension_days or deadline.last_day is None:
        return deadline
    return last_day(calendar, deadline.last_day, Limit(days=extension_days, working_days=False))


def clocks_of(
    steps: Iterable[StepFact],
    *,
    calendar: WorkingCalendar,
    limits: CaseLimits,
    today: date,
) -> list[Clock]:
    """Every clock of a case whose steps are `steps` (in order, the registration first)."""
    walk = _Walk(limits)
    for fact in steps:
        walk.step(fact)
    return [_judged(s, calendar, today) for s in walk.kept]


def _judged(started: _Started, calendar: WorkingCalendar, today: date) -> Clock:
    deadline = due_of(calendar, started.started, started.limit, started.extension_days)
    due = deadline.last_day
    clock = Clock(started.name, started.started, due, ClockState.running, started.done_at)
    if due is None:
        return replace(
            clock, due_reason=deadline.reason, state=_without_due(started, deadline, today)
        )
    duty = started.name in DUTIES
    if started.done_at is not None:
        in_time = local_day(started.done_at) <= due
        return replace(clock, state=ClockState.met if in_time or not duty else ClockState.late)
    if today > due:
        return replace(clock, state=ClockState.overdue if duty else ClockState.lapsed)
    return clock


def _without_due(started: _Started, deadline: Deadline, today: date) -> ClockState:
    """A clock whose last day falls in a year the calendar lacks: before that year begins it
    is surely running (or was surely met); after, it cannot be judged until the year is
    loaded."""
    assert deadline.missing_year is not None
    year_begins = date(deadline.missing_year, 1, 1)
    if started.done_at is not None:
        done_before = local_day(started.done_at) < year_begins
        return ClockState.met if done_before else ClockState.undetermined
    return ClockState.running if today < year_begins else ClockState.undetermined


def latest(clocks: Sequence[Clock], name: ClockName) -> Clock | None:
    """The last clock of that name (a case routed twice has two accept clocks)."""
    return next((c for c in reversed(clocks) if c.name is name), None)


def running(clocks: Sequence[Clock], name: ClockName) -> Clock | None:
    found = latest(clocks, name)
    return found if found is not None and found.pending else None
