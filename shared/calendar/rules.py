"""Counting limits on the working-day calendar, without I/O.

A limit of N days starting on day D ends at the end of day D + N: the day of the triggering act
is not counted (民法典 第二百零一条); a last day that is not a working day moves to the next
working day (第二百零三条). A limit in working days counts the working days after D. Working
days are Monday to Friday, less the statutory days off, plus the make-up working days (调休上班).

A year the calendar does not cover is never guessed: a limit that reaches into it has no last
day, and says which year it lacks.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from shared.campaign import SHANGHAI, Limit
from shared.events import notice_of

ONE_DAY = timedelta(days=1)
SATURDAY = 5


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """The years covered, and the days whose status differs from Monday to Friday's rule (a
    day off on a weekday, a make-up working day on a weekend) or is named (a holiday's
    weekend days): True when worked."""

    years: frozenset[int]
    exceptions: Mapping[date, bool] = field(default_factory=dict)

    def covers(self, day: date) -> bool:
        return day.year in self.years

    def is_working_day(self, day: date) -> bool:
        """Whether `day` is worked; YearNotCovered for a day of a year not covered."""
        if not self.covers(day):
            raise YearNotCovered(day.year)
        worked = self.exceptions.get(day)
        return day.weekday() < SATURDAY if worked is None else worked


class YearNotCovered(Exception):
    def __init__(self, year: int) -> None:
        super().__init__(year)
        self.year = year


@dataclass(frozen=True, slots=True)
class Deadline:
    """A limit's last day, or None with the reason it cannot be computed yet."""

    last_day: date | None
    missing_year: int | None = None

    @property
    def reason(self) -> str | None:
        if self.missing_year is None:
            return None
        return f"the working-day calendar does not cover {self.missing_year} yet"


def last_day(calendar: WorkingCalendar, start: date, limit: Limit) -> Deadline:
    """The last day of `limit` starting on `start` (the triggering day, not counted)."""
    try:
        if limit.working_days:
            return Deadline(_after_working_days(calendar, start, limit.days))
        return Deadline(_next_working_day(calendar, start + timedelta(days=limit.days)))
    except YearNotCovered as missing:
        return Deadline(None, missing_year=missing.year)


def within(calendar: WorkingCalendar, start: date, limit: Limit, day: date) -> bool:
    """Whether `day` is on or before the limit's last day; YearNotCovered when that cannot be
    known. A last day that reaches into a year not covered is after any day before that year."""
    deadline = last_day(calendar, start, limit)
    if deadline.last_day is not None:
        return day <= deadline.last_day
    assert deadline.missing_year is not None
    if day < date(deadline.missing_year, 1, 1):
        return True
    raise YearNotCovered(deadline.missing_year)


def _after_working_days(calendar: WorkingCalendar, start: date, days: int) -> date:
    day, counted = start, 0
    while counted < days:
        day += ONE_DAY
        counted += calendar.is_working_day(day)
    return day


def _next_working_day(calendar: WorkingCalendar, day: date) -> date:
    while not calendar.is_working_day(day):
        day += ONE_DAY
    return day


def local_day(moment: datetime) -> date:
    """The day of a moment in Asia/Shanghai, where every limit is counted."""
    return moment.astimezone(SHANGHAI).date()


def notice_day(accepted_at: datetime, reported_at: datetime | None) -> date:
    """The day a unit was told of an event (`shared.events.notice_of`)."""
    return local_day(notice_of(accepted_at, reported_at))
