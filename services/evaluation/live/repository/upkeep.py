"""Evaluation's upkeep tables: how far the rolling period has moved, the effects that come
due in it later, and the registry version the effects follow. Each is one row or a small set,
read and written in the caller's transaction."""

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from services.evaluation.models import SCHEMA, registry_followed, rolling_expiry
from services.evaluation.records import StatusWindow
from services.evaluation.schema_repository import SchemaRepository, by_field
from shared.status import ROLLING

MARK_PENDING_ROLLING = """
    WITH added AS (
        INSERT INTO {live}.rolling_pending (unit_code, occurred_at)
        SELECT DISTINCT f.unit_code, f.occurred_at
        FROM unnest($1::text[], $2::timestamptz[]) AS w(unit_code, ends_at)
        JOIN {schema}.effect f
            ON f.unit_code = w.unit_code AND f.occurred_at >= w.ends_at
        ON CONFLICT DO NOTHING
        RETURNING occurred_at
    )
    SELECT min(occurred_at) FROM added
"""
MARK_FUTURE_EFFECTS = """
    INSERT INTO {live}.rolling_pending (unit_code, occurred_at)
    SELECT DISTINCT unit_code, occurred_at FROM {schema}.effect WHERE occurred_at > $1
    ON CONFLICT DO NOTHING
"""
TAKE_DUE_ROLLING = (
    f"DELETE FROM {SCHEMA}.rolling_pending WHERE occurred_at <= $1 RETURNING unit_code"
)
NEXT_ROLLING_DUE = f"SELECT min(occurred_at) FROM {SCHEMA}.rolling_pending"
REGISTRY_VERSION = "SELECT version FROM registry.meta WHERE id = 1"
UNITS_MOVED = """
    SELECT DISTINCT code FROM registry.unit_changes
    WHERE version > $1 AND version <= $2 ORDER BY code
"""
EVENTS_ATTRIBUTED_TO = """
    SELECT event_id FROM {schema}.event
    WHERE attributed_code = ANY($1::text[]) AND known AND NOT voided
    ORDER BY event_id
"""


class UpkeepRepository(SchemaRepository):
    """`schema` names where the effects and events are read (live or a rebuild's); the upkeep
    rows themselves are always the live ones."""

    # --- rolling expiry ---------------------------------------------------------------------

    async def rolling_window_start(self) -> datetime | None:
        """The window start of the last expiry pass, locked until the transaction ends."""
        return await self.session.scalar(
            sa.select(rolling_expiry.c.window_start)
            .where(rolling_expiry.c.id == 1)
            .with_for_update()
        )

    async def set_rolling_window_start(self, start: datetime) -> None:
        statement = insert(rolling_expiry).values(id=1, window_start=start)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[rolling_expiry.c.id],
                set_={
                    "window_start": sa.func.greatest(
                        statement.excluded.window_start, rolling_expiry.c.window_start
                    )
                },
            )
        )

    async def mark_pending_rolling(self, windows: Sequence[StatusWindow]) -> datetime | None:
        """Remember, for each rolling window just recomputed, the unit's effects at or after
        its end (dated in the future when computed): the expiry pass recomputes the unit when
        their time comes. Returns the earliest moment newly remembered."""
        rolling = [w for w in windows if w.ends_at is not None and w.period == ROLLING]
        if not rolling:
            return None
        return await self.connection.fetchval(
            MARK_PENDING_ROLLING.format(live=SCHEMA, schema=self.schema),
            *by_field(rolling, "unit_code", "ends_at"),
        )

    async def mark_future_effects(self, now: datetime) -> None:
        """Every effect dated after `now` is pending for the rolling period (after a rebuild)."""
        await self.connection.execute(
            MARK_FUTURE_EFFECTS.format(live=SCHEMA, schema=self.schema), now
        )

    async def take_due_rolling(self, now: datetime) -> set[str]:
        """The units with a pending effect whose time has come; no longer pending."""
        rows = await self.connection.fetch(TAKE_DUE_ROLLING, now)
        return {row["unit_code"] for row in rows}

    async def next_rolling_due(self) -> datetime | None:
        return await self.connection.fetchval(NEXT_ROLLING_DUE)

    # --- registry moves ---------------------------------------------------------------------

    async def registry_version(self) -> int:
        """The registry's version as this transaction sees it now."""
        version = await self.connection.fetchval(REGISTRY_VERSION)
        return int(version or 0)

    async def followed_registry_version(self) -> int | None:
        """The registry version the effects follow, locked until the transaction ends."""
        return await self.session.scalar(
            sa.select(registry_followed.c.version)
            .where(registry_followed.c.id == 1)
            .with_for_update()
        )

    async def units_moved(self, after: int, until: int) -> list[str]:
        """The units that loads with a version in (after, until] moved or re-levelled."""
        rows = await self.connection.fetch(UNITS_MOVED, after, until)
        return [row["code"] for row in rows]

    async def events_attributed_to(self, unit_codes: Iterable[str]) -> list[UUID]:
        """The active events attributed to these units now, in id order."""
        codes = sorted(set(unit_codes))
        if not codes:
            return []
        rows = await self.connection.fetch(EVENTS_ATTRIBUTED_TO.format(schema=self.schema), codes)
        return [row["event_id"] for row in rows]

    async def set_followed_registry_version(self, version: int) -> None:
        statement = insert(registry_followed).values(id=1, version=version)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[registry_followed.c.id],
                set_={"version": statement.excluded.version},
            )
        )
