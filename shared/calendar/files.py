"""Local overrides of the calendar from a CSV file: `date,kind,name`, `kind` being `holiday`
(a day off) or `workday` (a make-up working day, 调休上班). Every year a file names a day of
is covered once it is loaded, so a file can add a year the package does not have yet; for a
year already covered it replaces the days it names and keeps the others."""

import csv
from datetime import date
from pathlib import Path

from shared.calendar.seed import CalendarDay

COLUMNS = ["date", "kind", "name"]
KINDS = {"holiday": False, "workday": True}


class CalendarFileError(Exception):
    """The file's problems, one per line; nothing of it is loaded."""


def read_file(path: Path) -> list[CalendarDay]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return read_rows(list(csv.reader(handle)))


def read_rows(rows: list[list[str]]) -> list[CalendarDay]:
    if not rows or [cell.strip() for cell in rows[0]] != COLUMNS:
        raise CalendarFileError(f"line 1: the header must be {','.join(COLUMNS)}")
    days: dict[date, CalendarDay] = {}
    problems: list[str] = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            day = _day(row)
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        if day.day in days:
            problems.append(f"line {line}: {day.day} is named twice")
        days[day.day] = day
    if problems:
        raise CalendarFileError("\n".join(problems))
    if not days:
        raise CalendarFileError("the file names no day")
    return sorted(days.values(), key=lambda found: found.day)


def _day(row: list[str]) -> CalendarDay:
    if len(row) != len(COLUMNS):
        raise ValueError(f"{len(row)} columns, expected {len(COLUMNS)}")
    text, kind, name = (cell.strip() for cell in row)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is neither holiday nor workday")
    return CalendarDay(day, KINDS[kind], name)
