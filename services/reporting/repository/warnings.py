"""Early warnings: the latest version of each, and the warnings feed (one row per applied
version, numbered under the apply lock like the status feed, with the unit's path when
applied so that any root can filter it)."""

import json
from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from services.reporting.models import PATH_LEVELS, early_warnings, path_column, warning_changes
from services.reporting.records import StoredWarning
from services.reporting.repository.statements import (
    column_arrays,
    insert_rows_sql,
    upsert_newer_rows_sql,
)
from shared.levels import Level
from shared.repository import Repository

TABLE = early_warnings.fullname
FEED = warning_changes.fullname
SAVED_COLUMNS = tuple(c.name for c in early_warnings.columns if c.name != "applied_at")
APPENDED = ("seq", *SAVED_COLUMNS, *(path_column(level) for level in PATH_LEVELS))
WARNING_FEED_COLUMNS = (
    "seq",
    "warning_id",
    "kind",
    "unit_code",
    "raised_at",
    "cleared_at",
    "event_ids",
    "detail",
    "version",
)
SAVE_WARNINGS_SQL = upsert_newer_rows_sql(early_warnings, SAVED_COLUMNS, keys=("warning_id",))
VERSIONS_SQL = f"SELECT warning_id, version FROM {TABLE} WHERE warning_id = ANY($1::uuid[])"
APPEND_SQL = insert_rows_sql(warning_changes, APPENDED, numbered_after_last="seq")
OPEN_SQL = f"SELECT count(*) FROM {TABLE} WHERE cleared_at IS NULL"
# Under a root, as the warnings feed places them: the newest version of each warning whose path
# when applied runs through the root (found through the feed's index on that path).
OPEN_UNDER_SQL = {
    level: f"""
        SELECT count(*) FROM (
            SELECT DISTINCT ON (warning_id) warning_id, cleared_at FROM {FEED}
            WHERE {path_column(level)} = $1
            ORDER BY warning_id, seq DESC
        ) AS newest
        WHERE cleared_at IS NULL
    """
    for level in PATH_LEVELS
}


def newest_per_warning(warnings: Sequence[StoredWarning]) -> list[StoredWarning]:
    newest: dict[UUID, StoredWarning] = {}
    for w in warnings:
        if w.warning_id not in newest or w.version > newest[w.warning_id].version:
            newest[w.warning_id] = w
    return list(newest.values())


def warning_row(warning: StoredWarning, columns: Sequence[str]) -> list[Any]:
    row = warning.to_row()
    row["detail"] = json.dumps(row["detail"])
    row |= {path_column(level): code for level, code in zip(PATH_LEVELS, warning.path, strict=True)}
    return [row[c] for c in columns]


class WarningRepository(Repository):
    # --- the warning consumer's (in its session, under the apply lock) ----------------------

    async def warning_versions(self, warning_ids: Collection[UUID]) -> dict[UUID, int]:
        if not warning_ids:
            return {}
        rows = await self.connection.fetch(VERSIONS_SQL, list(warning_ids))
        return {r["warning_id"]: int(r["version"]) for r in rows}

    async def save_warnings(self, warnings: Sequence[StoredWarning]) -> None:
        rows = [warning_row(w, SAVED_COLUMNS) for w in newest_per_warning(warnings)]
        if rows:
            await self.connection.execute(
                SAVE_WARNINGS_SQL, *column_arrays(early_warnings, SAVED_COLUMNS, rows)
            )

    async def append_warning_changes(self, warnings: Sequence[StoredWarning]) -> None:
        """Feed rows, in the order given, numbered after the last one."""
        if not warnings:
            return
        rows = [
            [number, *warning_row(w, APPENDED[1:])] for number, w in enumerate(warnings, start=1)
        ]
        await self.connection.execute(APPEND_SQL, *column_arrays(warning_changes, APPENDED, rows))

    # --- reads ------------------------------------------------------------------------------

    async def open_warnings(self, root_code: str | None, root_level: Level | None) -> int:
        """Warnings under the root (None: anywhere) whose newest version is not cleared."""
        if root_code is None or root_level is None:
            return int(await self.connection.fetchval(OPEN_SQL))
        return int(await self.connection.fetchval(OPEN_UNDER_SQL[root_level], root_code))

    async def warning_changes_after(
        self, *, root_code: str, root_level: Level, after: int, limit: int, kind: str | None
    ) -> list[sa.Row[Any]]:
        """A page of the warnings feed under the root, in a session."""
        t = warning_changes
        query = sa.select(*[t.c[name] for name in WARNING_FEED_COLUMNS]).where(
            t.c[path_column(root_level)] == root_code, t.c.seq > after
        )
        if kind is not None:
            query = query.where(t.c.kind == kind)
        rows = await self.session.execute(query.order_by(t.c.seq).limit(limit))
        return list(rows)
