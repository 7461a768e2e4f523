"""The handling bodies of units (综治, 维稳, 司法, 民政, 信访, 人社, 自然资源 …): reference data in
`registry.bodies`, written only by `sanwu bodies load FILE.csv` (columns `unit_code,body,name`).
A file with any bad line changes nothing; every problem is reported with its line number."""

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from shared.registry.loader import RegistryFileError
from shared.repository import Repository

COLUMNS = ("unit_code", "body", "name")
CODE = re.compile(r"^[0-9]{12}$")
MAX_TEXT = 64

UNKNOWN_UNITS_SQL = """
    SELECT code FROM unnest($1::text[]) AS code
     WHERE code NOT IN (SELECT code FROM registry.units)
"""
UPSERT_SQL = """
    WITH upserted AS (
        INSERT INTO registry.bodies AS b (unit_code, body, name)
        SELECT * FROM unnest($1::char(12)[], $2::text[], $3::text[])
        ON CONFLICT (unit_code, body) DO UPDATE SET name = excluded.name
         WHERE b.name IS DISTINCT FROM excluded.name
        RETURNING (xmax = 0) AS inserted
    )
    SELECT count(*) FILTER (WHERE inserted) AS added,
           count(*) FILTER (WHERE NOT inserted) AS changed
      FROM upserted
"""
BODY_SQL = "SELECT name FROM registry.bodies WHERE unit_code = $1 AND body = $2"
BODIES_OF_SQL = "SELECT body, name FROM registry.bodies WHERE unit_code = $1 ORDER BY body"


@dataclass(frozen=True, slots=True)
class BodyRow:
    line: int
    unit_code: str
    body: str
    name: str


@dataclass
class BodiesLoaded:
    read: int
    added: int
    changed: int

    @property
    def unchanged(self) -> int:
        return self.read - self.added - self.changed


class BodyRepository(Repository):
    async def unknown_units(self, codes: list[str]) -> set[str]:
        return {row["code"] for row in await self.connection.fetch(UNKNOWN_UNITS_SQL, codes)}

    async def upsert(self, rows: list[BodyRow]) -> tuple[int, int]:
        found = await self.connection.fetchrow(
            UPSERT_SQL,
            [r.unit_code for r in rows],
            [r.body for r in rows],
            [r.name for r in rows],
        )
        assert found is not None
        return int(found["added"]), int(found["changed"])

    async def name_of(self, unit_code: str, body: str) -> str | None:
        name: str | None = await self.connection.fetchval(BODY_SQL, unit_code, body)
        return name

    async def bodies_of(self, unit_code: str) -> dict[str, str]:
        return {r["body"]: r["name"] for r in await self.connection.fetch(BODIES_OF_SQL, unit_code)}


def read_rows(path: Path) -> list[BodyRow]:
    problems: list[str] = []
    rows: list[BodyRow] = []
    seen: dict[tuple[str, str], int] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != COLUMNS:
            raise RegistryFileError([f"line 1: the header must be {','.join(COLUMNS)}"])
        for line, fields in enumerate(reader, start=2):
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(COLUMNS):
                problems.append(f"line {line}: {len(fields)} columns, {len(COLUMNS)} expected")
                continue
            unit_code, body, name = (f.strip() for f in fields)
            problems += _problems(line, unit_code, body, name)
            if (unit_code, body) in seen:
                problems.append(
                    f"line {line}: {unit_code} {body} again (line {seen[unit_code, body]})"
                )
            seen[unit_code, body] = line
            rows.append(BodyRow(line, unit_code, body, name))
    if problems:
        raise RegistryFileError(problems)
    return rows


def _problems(line: int, unit_code: str, body: str, name: str) -> list[str]:
    found = []
    if not CODE.fullmatch(unit_code):
        found.append(f"line {line}: unit_code {unit_code!r} is not 12 digits")
    for field, value in (("body", body), ("name", name)):
        if not value:
            found.append(f"line {line}: {field} is empty")
        elif len(value) > MAX_TEXT:
            found.append(f"line {line}: {field} is longer than {MAX_TEXT} characters")
    return found


async def load_bodies(repository: BodyRepository, path: Path) -> BodiesLoaded:
    """Check the whole file (units must be in the registry), then upsert it in the caller's
    transaction."""
    rows = read_rows(path)
    unknown = await repository.unknown_units(sorted({r.unit_code for r in rows}))
    if unknown:
        raise RegistryFileError(
            [f"line {r.line}: unknown unit {r.unit_code}" for r in rows if r.unit_code in unknown]
        )
    added, changed = await repository.upsert(rows) if rows else (0, 0)
    return BodiesLoaded(read=len(rows), added=added, changed=changed)
