"""Every SQL statement of the calendar."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from shared.calendar.rules import WorkingCalendar
from shared.calendar.seed import CalendarDay
from shared.repository import Repository

CHANNEL = "cases_calendar"
PACKAGE_PREFIX = "chinesecalendar"

YEARS_SQL = "SELECT year, source, loaded_at FROM cases.calendar_year ORDER BY year"
EXCEPTIONS_SQL = "SELECT day, working FROM cases.calendar_day"
DAYS_OF_YEAR_SQL = """
SELECT day, working, name, source FROM cases.calendar_day
WHERE day >= make_date($1, 1, 1) AND day < make_date($1 + 1, 1, 1)
ORDER BY day
"""
# A file's days replace whatever the calendar had for them.
PUT_DAYS_SQL = """
INSERT INTO cases.calendar_day (day, working, name, source)
SELECT * FROM unnest($1::date[], $2::boolean[], $3::text[], $4::text[])
ON CONFLICT (day) DO UPDATE
SET working = excluded.working, name = excluded.name, source = excluded.source
"""
# The package's days never replace a file's.
SEED_DAYS_SQL = PUT_DAYS_SQL + f"WHERE calendar_day.source LIKE '{PACKAGE_PREFIX}%'"
PUT_YEARS_SQL = """
INSERT INTO cases.calendar_year (year, source, loaded_at)
SELECT year, $2, now() FROM unnest($1::smallint[]) AS year
ON CONFLICT (year) DO UPDATE SET source = excluded.source, loaded_at = excluded.loaded_at
"""
SEED_YEARS_SQL = f"""
INSERT INTO cases.calendar_year (year, source, loaded_at)
SELECT year, $2, now() FROM unnest($1::smallint[]) AS year
ON CONFLICT (year) DO UPDATE SET source = excluded.source, loaded_at = excluded.loaded_at
WHERE calendar_year.source LIKE '{PACKAGE_PREFIX}%'
"""
NOTIFY_SQL = f"SELECT pg_notify('{CHANNEL}', '')"


@dataclass(frozen=True, slots=True)
class LoadedYear:
    year: int
    source: str
    loaded_at: datetime


@dataclass(frozen=True, slots=True)
class NamedDay:
    day: date
    working: bool
    name: str
    source: str


class CalendarRepository(Repository):
    async def calendar(self) -> WorkingCalendar:
        years = await self.connection.fetch(YEARS_SQL)
        exceptions = await self.connection.fetch(EXCEPTIONS_SQL)
        return WorkingCalendar(
            years=frozenset(row["year"] for row in years),
            exceptions={row["day"]: row["working"] for row in exceptions},
        )

    async def years(self) -> list[LoadedYear]:
        return [LoadedYear(**row) for row in await self.connection.fetch(YEARS_SQL)]

    async def days_of(self, year: int) -> list[NamedDay]:
        return [NamedDay(**row) for row in await self.connection.fetch(DAYS_OF_YEAR_SQL, year)]

    async def put(self, days: Sequence[CalendarDay], *, source: str, seeding: bool) -> None:
        """The days and the years they fall in, then every process told (on commit)."""
        await self.connection.execute(
            SEED_DAYS_SQL if seeding else PUT_DAYS_SQL,
            [d.day for d in days],
            [d.working for d in days],
            [d.name for d in days],
            [source] * len(days),
        )
        years = sorted({d.day.year for d in days})
        await self.connection.execute(SEED_YEARS_SQL if seeding else PUT_YEARS_SQL, years, source)
        await self.connection.execute(NOTIFY_SQL)
