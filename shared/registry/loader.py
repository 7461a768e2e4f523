"""`sanwu units load FILE.csv`: validate a whole registry file, then upsert it in one transaction.

A file with any bad line changes nothing: every problem is reported with its line number. A
load that changes something gets the next registry version, and the units it moved (a new
parent) or re-levelled are recorded under that version in `registry.unit_changes`: services
that keep something per ancestor (evaluation) re-evaluate what lies under them.
"""

import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from shared.levels import RANK, Level
from shared.registry.repository import RegistryRepository, UnitLoadRepository

COLUMNS = ("code", "name", "level", "parent_code")
CODE = re.compile(r"^[0-9]{12}$")
LEVELS = {level.value for level in Level}
COPY_CHUNK = 5_000  # units copied between two progress reports


@dataclass(frozen=True, slots=True)
class UnitRow:
    line: int
    code: str
    name: str
    level: str
    parent_code: str | None


@dataclass
class LoadReport:
    read: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    moved: int = 0  # of the changed: a new parent or level


@dataclass
class RegistryFileError(Exception):
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        shown = self.problems[:50]
        more = len(self.problems) - len(shown)
        return "\n".join(shown + ([f"... and {more} more"] if more > 0 else []))


def read_rows(path: Path) -> list[UnitRow]:
    problems: list[str] = []
    rows: list[UnitRow] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != COLUMNS:
            raise RegistryFileError([f"line 1: header must be {','.join(COLUMNS)}, got {header}"])
        for line, record in enumerate(reader, start=2):
            if not record or all(not cell.strip() for cell in record):
                continue
            if len(record) != len(COLUMNS):
                problems.append(f"line {line}: expected 4 columns, got {len(record)}")
                continue
            code, name, level, parent = (cell.strip() for cell in record)
            if not CODE.match(code):
                problems.append(f"line {line}: code {code!r} is not 12 digits")
            if not name:
                problems.append(f"line {line}: name is empty")
            if level not in LEVELS:
                problems.append(f"line {line}: unknown level {level!r} (one of {sorted(LEVELS)})")
            if parent and not CODE.match(parent):
                problems.append(f"line {line}: parent_code {parent!r} is not 12 digits")
            rows.append(UnitRow(line, code, name, level, parent or None))
    if problems:
        raise RegistryFileError(problems)
    return rows


def check_tree(rows: list[UnitRow], existing: dict[str, tuple[str, str | None]]) -> None:
    """Duplicates, missing parents, parents not above their children, and cycles."""
    problems: list[str] = []
    by_code: dict[str, UnitRow] = {}
    for row in rows:
        if row.code in by_code:
            problems.append(
                f"line {row.line}: code {row.code} already on line {by_code[row.code].line}"
            )
        by_code[row.code] = row

    def level_of(code: str) -> str | None:
        row = by_code.get(code)
        return row.level if row else (existing[code][0] if code in existing else None)

    def parent_of(code: str) -> str | None:
        row = by_code.get(code)
        return row.parent_code if row else existing.get(code, (None, None))[1]

    for row in rows:
        if row.parent_code is None:
            if row.level != Level.province:
                problems.append(f"line {row.line}: a {row.level} needs a parent_code")
            continue
        parent_level = level_of(row.parent_code)
        if parent_level is None:
            problems.append(f"line {row.line}: parent_code {row.parent_code} is not a known unit")
        elif RANK[parent_level] <= RANK[row.level]:
            problems.append(
                f"line {row.line}: parent {row.parent_code} is a {parent_level}, "
                f"not above a {row.level}"
            )
    for row in rows:
        seen = {row.code}
        code = row.parent_code
        while code is not None:
            if code in seen:
                problems.append(f"line {row.line}: unit {row.code} is its own ancestor (cycle)")
                break
            seen.add(code)
            code = parent_of(code)
    if problems:
        raise RegistryFileError(problems)


async def load_units(
    connection: AsyncConnection,
    rows: Iterable[UnitRow],
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> LoadReport:
    """Upsert the rows (already checked) inside the caller's transaction; `on_progress` gets
    (units copied in, units in all) as the copy goes."""
    rows = list(rows)
    report = LoadReport(read=len(rows))
    load = await UnitLoadRepository.from_connection(connection)
    # One load at a time (readers go on): what a load moved is judged against the last one.
    await load.lock_units()
    await load.create_incoming()
    for start in range(0, len(rows), COPY_CHUNK):
        chunk = rows[start : start + COPY_CHUNK]
        await load.copy_incoming([(r.code, r.name, r.level, r.parent_code) for r in chunk])
        if on_progress is not None:
            on_progress(min(start + COPY_CHUNK, len(rows)), len(rows))
    moved = await load.moved()
    report.moved = len(moved)
    report.added, report.changed = await load.upsert_incoming()
    report.unchanged = report.read - report.added - report.changed
    if report.added or report.changed:
        version = await load.next_version()
        if moved:
            await load.record_changes(version, moved)
    return report


async def load_file(
    connection: AsyncConnection,
    path: Path,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> LoadReport:
    rows = read_rows(path)
    existing = await (await RegistryRepository.from_connection(connection)).shape()
    check_tree(rows, existing)
    return await load_units(connection, rows, on_progress=on_progress)
