"""The flags statuses raise on application units (动态管理): which units some application holds,
and a unit flagged or cleared wherever it is under review or holds the title."""

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select

from services.applications.models import ApplicationUnitRow, application_unit
from services.applications.records import FlagChange
from services.applications.repository.common import UNSYNCED, objects
from services.applications.repository.statuses import Key
from services.applications.workflow import WATCHED
from shared.repository import Repository

# The unit states in which losing three-no raises a flag (under review, or holding the title).
FLAGGED_STATES = tuple(sorted(state.value for state in WATCHED))
_U = ApplicationUnitRow

WITH_UNITS_SQL = f"""
    SELECT DISTINCT unit_code, period FROM {application_unit.fullname}
    WHERE (unit_code, period) IN (SELECT * FROM unnest($1::bpchar[], $2::text[]))
"""


def _watched(unit_code: str, period: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        col(_U.unit_code) == unit_code,
        col(_U.period) == period,
        col(_U.state).in_(FLAGGED_STATES),
    )


class FlagsRepository(Repository):
    async def keys_with_units(self, keys: Collection[Key]) -> set[Key]:
        """The keys for which some application holds the unit for the period."""
        if not keys:
            return set()
        codes, periods = zip(*keys, strict=True)
        rows = await self.connection.fetch(WITH_UNITS_SQL, list(codes), list(periods))
        return {(r["unit_code"], r["period"]) for r in rows}

    async def flag(
        self, *, unit_code: str, period: str, since: datetime, event_ids: list[str]
    ) -> list[FlagChange]:
        """Flag the unit in every application holding it under review or with the title that
        has no flag yet; an existing flag takes the events that now count (its `since`
        stays). Returns the units newly flagged."""
        held = _watched(unit_code, period)
        await self.session.execute(
            sa.update(_U)
            .where(held, col(_U.flag_since).is_not(None))
            .values(flag_event_ids=event_ids)
            .execution_options(**UNSYNCED)
        )
        rows = await self.session.execute(
            sa.update(_U)
            .where(held, col(_U.flag_since).is_(None))
            .values(flag_since=since, flag_event_ids=event_ids)
            .returning(col(_U.application_id), col(_U.unit_code))
            .execution_options(**UNSYNCED)
        )
        return [FlagChange(r.application_id, r.unit_code, event_ids) for r in rows]

    async def clear(self, *, unit_code: str, period: str) -> list[FlagChange]:
        """Clear the flag of the unit wherever it is under review or holds the title; returns
        the units cleared with the events they had been flagged for."""
        flagged = sa.and_(_watched(unit_code, period), col(_U.flag_since).is_not(None))
        found = await objects(self.session, select(_U).where(flagged).with_for_update())
        if found:
            await self.session.execute(
                sa.update(_U)
                .where(flagged)
                .values(flag_since=None, flag_event_ids=None)
                .execution_options(**UNSYNCED)
            )
        return [
            FlagChange(u.application_id, u.unit_code, list(u.flag_event_ids or ())) for u in found
        ]
