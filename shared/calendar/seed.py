"""The calendar as the `chinesecalendar` package knows it: the State Council's schedule of
statutory days off and make-up working days, one year at a time, as announced.

Why this package rather than `holidays`: it lists the make-up working days (调休上班) as data
and covers exactly the years announced, so a year it lacks is visibly missing; `holidays`
computes any year from rules (a guess before the announcement) and carries the make-up days
only inside the names of the days off."""

from dataclasses import dataclass
from datetime import date
from importlib import metadata

from chinese_calendar import constants

PACKAGE = "chinesecalendar"
NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}


@dataclass(frozen=True, slots=True)
class CalendarDay:
    day: date
    working: bool
    name: str


def package_source() -> str:
    return f"{PACKAGE} {metadata.version(PACKAGE)}"


def package_years() -> list[int]:
    """Every year the package has the schedule of."""
    return sorted({day.year for day in constants.holidays})


def package_days() -> list[CalendarDay]:
    """Every day off of a holiday (weekend days included) and every make-up working day."""
    days = [CalendarDay(day, False, _chinese(name)) for day, name in constants.holidays.items()]
    days += [CalendarDay(day, True, _chinese(name)) for day, name in constants.workdays.items()]
    return sorted(days, key=lambda found: found.day)


def _chinese(name: str) -> str:
    return NAMES.get(name, name)
