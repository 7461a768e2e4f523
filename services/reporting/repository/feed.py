"""The status-change feed: one row per applied change, numbered in commit order under the
apply lock, with the unit's path so that any root can filter it."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.reporting.models import PATH_LEVELS, path_column, status_changes
from services.reporting.readmodel import StoredStatus
from services.reporting.repository.statements import column_arrays, insert_rows_sql
from shared.levels import Level
from shared.repository import Repository

TABLE = status_changes.fullname
FEED_COLUMNS = ("seq", "unit_code", "period", "three_no", "version", "changed_at")
APPENDED = (
    "seq",
    "unit_code",
    "period",
    "level",
    "three_no",
    "version",
    "changed_at",
    *(path_column(level) for level in PATH_LEVELS),
)
APPEND_SQL = insert_rows_sql(status_changes, APPENDED, numbered_after_last="seq")
LAST_CHANGE_SQL = f"SELECT changed_at FROM {TABLE} ORDER BY seq DESC LIMIT 1"
# Under a root: through the feed's (level code, seq) index of the root's level.
LAST_CHANGE_UNDER_SQL = {
    level: f"SELECT changed_at FROM {TABLE} WHERE {path_column(level)} = $1 "
    "ORDER BY seq DESC LIMIT 1"
    for level in PATH_LEVELS
}


class FeedRepository(Repository):
    async def append_changes(self, statuses: Sequence[StoredStatus]) -> None:
        """Feed rows, in the order given, numbered after the last one (in the projection's
        session, under the apply lock)."""
        if not statuses:
            return
        rows = [
            [
                number,
                s.unit_code,
                s.period,
                s.level.value,
                s.three_no,
                s.version,
                s.changed_at,
                *s.path,
            ]
            for number, s in enumerate(statuses, start=1)
        ]
        await self.connection.execute(APPEND_SQL, *column_arrays(status_changes, APPENDED, rows))

    async def last_change(self, root_code: str | None, root_level: Level | None) -> datetime | None:
        """When a status under the root (None: anywhere) last changed; None if none did."""
        if root_code is None or root_level is None:
            changed_at: datetime | None = await self.connection.fetchval(LAST_CHANGE_SQL)
        else:
            sql = LAST_CHANGE_UNDER_SQL[root_level]
            changed_at = await self.connection.fetchval(sql, root_code)
        return changed_at

    async def changes_after(
        self, *, root_code: str, root_level: Level, after: int, limit: int
    ) -> list[sa.Row[Any]]:
        """A page of the feed under the root, in a session."""
        t = status_changes
        rows = await self.session.execute(
            sa.select(*[t.c[name] for name in FEED_COLUMNS])
            .where(t.c[path_column(root_level)] == root_code, t.c.seq > after)
            .order_by(t.c.seq)
            .limit(limit)
        )
        return list(rows)
