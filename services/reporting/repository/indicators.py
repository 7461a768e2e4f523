"""The latest work-record indicators per (unit, period): what the indicator consumer saves,
and the reads of a unit's indicators, the exports' columns and the summaries' figures."""

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

import asyncpg

from services.reporting.models import unit_indicators
from services.reporting.records import StoredIndicators
from services.reporting.repository.statements import upsert_newer_sql
from shared.repository import Repository

TABLE = unit_indicators.fullname
KEYS = ("unit_code", "period")
SAVED_COLUMNS = tuple(c.name for c in unit_indicators.columns if c.name != "applied_at")
SAVE_INDICATORS_SQL = upsert_newer_sql(TABLE, SAVED_COLUMNS, keys=KEYS) + " RETURNING unit_code"
INDICATORS_SQL = f"SELECT * FROM {TABLE} WHERE unit_code = $1 AND period = $2"
INDICATORS_AMONG_SQL = f"SELECT * FROM {TABLE} WHERE period = $1 AND unit_code = ANY($2::bpchar[])"
# Per unit with indicators: whether its meetings fell in every ended slot ($3), and its ratings.
KEPT_AMONG_SQL = f"""
    SELECT unit_code, meetings_held @> $3::date[] AS kept,
           satisfied, basically_satisfied, dissatisfied
    FROM {TABLE}
    WHERE period = $1 AND unit_code = ANY($2::bpchar[])
"""


def newest_per_key(indicators: Sequence[StoredIndicators]) -> list[StoredIndicators]:
    newest: dict[tuple[str, str], StoredIndicators] = {}
    for item in indicators:
        if item.key not in newest or item.version > newest[item.key].version:
            newest[item.key] = item
    return list(newest.values())


def indicator_rows(indicators: Sequence[StoredIndicators]) -> list[list[Any]]:
    """The newest of each (unit, period), as rows of SAVED_COLUMNS."""
    rows = []
    for item in newest_per_key(indicators):
        row = item.to_row()
        row["ratings"] = json.dumps(row["ratings"])
        rows.append([row[c] for c in SAVED_COLUMNS])
    return rows


class IndicatorRepository(Repository):
    async def save_indicators(self, indicators: Sequence[StoredIndicators]) -> int:
        """Keep the highest version per (unit, period); returns how many rows it changed (in
        the consumer's session, under the apply lock)."""
        rows = indicator_rows(indicators)
        if not rows:
            return 0
        return len(await self.connection.fetchmany(SAVE_INDICATORS_SQL, rows))

    async def indicators(self, unit_code: str, period: str) -> StoredIndicators | None:
        row = await self.connection.fetchrow(INDICATORS_SQL, unit_code, period)
        return StoredIndicators.from_row(row) if row else None

    async def indicators_among(
        self, period: str, unit_codes: list[str]
    ) -> dict[str, StoredIndicators]:
        rows = await self.connection.fetch(INDICATORS_AMONG_SQL, period, unit_codes)
        return {row["unit_code"]: StoredIndicators.from_row(row) for row in rows}

    async def kept_among(
        self, period: str, unit_codes: list[str], *, ended_slots: list[date]
    ) -> list[asyncpg.Record]:
        return list(await self.connection.fetch(KEPT_AMONG_SQL, period, unit_codes, ended_slots))
