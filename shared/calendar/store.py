"""The calendar in force, kept in process and read again whenever it changes.

Loading a file or seeding commits the days with a NOTIFY on `cases_calendar`
(shared.notifications): every process reads the calendar anew from then on, so a year loaded
while the service runs counts at once, without a restart. While a process is not listening it
keeps nothing and reads the calendar for every deadline."""

from dataclasses import dataclass
from datetime import date, timedelta

from prometheus_client import Counter

from shared.boot import Clock
from shared.calendar.repository import CalendarRepository, LoadedYear, NamedDay
from shared.calendar.rules import Deadline, Limit, WorkingCalendar, last_day, local_day
from shared.db import Database
from shared.errors import NotFound

deadlines_not_computable = Counter(
    "sanwu_deadlines_not_computable_total",
    "Deadlines asked for that reach into a year the working-day calendar does not cover",
    ["limit"],
)


class CalendarStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.listening = False
        self.generation = 0
        self._kept: WorkingCalendar | None = None

    def new_generation(self, *_: object) -> None:
        self.generation += 1
        self._kept = None

    async def calendar(self) -> WorkingCalendar:
        if self.listening and self._kept is not None:
            return self._kept
        generation = self.generation
        async with self.db.connection() as connection:
            found = await CalendarRepository(connection).calendar()
        if self.listening and generation == self.generation:
            self._kept = found
        return found


@dataclass(frozen=True)
class Coverage:
    missing: list[int]  # of the current and the next year

    @property
    def complete(self) -> bool:
        return not self.missing


class Deadlines:
    """Last days of named limits, counted on the calendar in force."""

    def __init__(self, store: CalendarStore, *, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def last_day(self, start: date, limit: Limit, *, name: str) -> Deadline:
        deadline = last_day(await self.store.calendar(), start, limit)
        if deadline.last_day is None:
            deadlines_not_computable.labels(limit=name).inc()
        return deadline

    async def coverage(self) -> Coverage:
        """Whether the calendar covers this year and the next, which limits running today
        may reach."""
        calendar = await self.store.calendar()
        this_year = local_day(self.clock()).year
        years = (this_year, this_year + 1)
        return Coverage(missing=[year for year in years if year not in calendar.years])


class YearNotLoaded(NotFound):
    title = "Year not in the calendar"
    slug = "calendar-year-not-loaded"


@dataclass(frozen=True)
class CalendarYear:
    year: LoadedYear
    working_days: int
    days: list[NamedDay]


async def calendar_year(db: Database, year: int) -> CalendarYear:
    """A year of the calendar in force, as loaded; YearNotLoaded when it is not covered."""
    async with db.connection() as connection:
        repository = CalendarRepository(connection)
        loaded = {found.year: found for found in await repository.years()}
        if year not in loaded:
            raise YearNotLoaded(f"the working-day calendar does not cover {year}")
        days = await repository.days_of(year)
    calendar = WorkingCalendar(
        years=frozenset({year}), exceptions={day.day: day.working for day in days}
    )
    first, after = date(year, 1, 1), date(year + 1, 1, 1)
    working = sum(
        calendar.is_working_day(first + timedelta(days=n)) for n in range((after - first).days)
    )
    return CalendarYear(loaded[year], working, days)
