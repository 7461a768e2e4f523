"""The SQL of the service's view of statuses and of the flags they raise and clear."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import orjson
import sqlalchemy as sa

from services.applications.models import application_unit, unit_status
from services.applications.workflow import WATCHED
from shared.locks import LockName, lock_key
from shared.repository import Repository
from shared.status import UnitStatus

STATUS_LOCK = lock_key(LockName.applications_statuses)
# The unit states in which losing three-no raises a flag (under review, or holding the title).
FLAGGED_STATES = tuple(sorted(state.value for state in WATCHED))
Key = tuple[str, str]  # (unit_code, period)

_STORED_VERSIONS = f"""
    SELECT unit_code, period, version FROM {unit_status.fullname}
    WHERE (unit_code, period) IN (SELECT * FROM unnest($1::bpchar[], $2::text[]))
"""
# Newer version wins: a row at or above the incoming version is left as it is.
_SAVE = f"""
    INSERT INTO {unit_status.fullname} AS s
        (unit_code, period, three_no, counting_event_ids, version, changed_at, counts, people)
    SELECT u.unit_code, u.period, u.three_no,
           ARRAY(SELECT jsonb_array_elements_text(u.event_ids)), u.version, u.changed_at,
           u.counts, u.people
    FROM unnest($1::bpchar[], $2::text[], $3::bool[], $4::jsonb[], $5::int[],
                $6::timestamptz[], $7::jsonb[], $8::jsonb[])
         AS u(unit_code, period, three_no, event_ids, version, changed_at, counts, people)
    ON CONFLICT (unit_code, period) DO UPDATE SET
        three_no = EXCLUDED.three_no, counting_event_ids = EXCLUDED.counting_event_ids,
        version = EXCLUDED.version, changed_at = EXCLUDED.changed_at,
        counts = EXCLUDED.counts, people = EXCLUDED.people
    WHERE s.version < EXCLUDED.version
"""
_WITH_UNITS = f"""
    SELECT DISTINCT unit_code, period FROM {application_unit.fullname}
    WHERE (unit_code, period) IN (SELECT * FROM unnest($1::bpchar[], $2::text[]))
"""


@dataclass(frozen=True, slots=True)
class FlagChange:
    """One application unit flagged or cleared, with the events it was flagged for."""

    application_id: UUID
    unit_code: str
    event_ids: list[str]


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


class StatusRepository(Repository):
    async def lock_exclusive(self) -> None:
        await self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(STATUS_LOCK)))

    async def stored_versions(self, keys: Collection[Key]) -> dict[Key, int]:
        if not keys:
            return {}
        codes, periods = zip(*keys, strict=True)
        rows = await self.connection.fetch(_STORED_VERSIONS, list(codes), list(periods))
        return {(r["unit_code"], r["period"]): r["version"] for r in rows}

    async def save(self, statuses: Sequence[UnitStatus]) -> None:
        """Store each status unless a row of the same or a newer version is there."""
        if not statuses:
            return
        await self.connection.execute(
            _SAVE,
            [s.unit_code for s in statuses],
            [s.period for s in statuses],
            [s.three_no for s in statuses],
            [_json(s.counting_event_ids) for s in statuses],
            [s.version for s in statuses],
            [s.changed_at for s in statuses],
            [_json(s.counts.model_dump()) for s in statuses],
            [_json(s.people.model_dump()) for s in statuses],
        )

    async def keys_with_units(self, keys: Collection[Key]) -> set[Key]:
        """The keys for which some application holds the unit for the period."""
        if not keys:
            return set()
        codes, periods = zip(*keys, strict=True)
        rows = await self.connection.fetch(_WITH_UNITS, list(codes), list(periods))
        return {(r["unit_code"], r["period"]) for r in rows}

    async def flag(
        self, *, unit_code: str, period: str, since: datetime, event_ids: list[str]
    ) -> list[FlagChange]:
        """Flag the unit in every application holding it under review or with the title that
        has no flag yet; an existing flag takes the events that now count (its `since`
        stays). Returns the units newly flagged."""
        t = application_unit
        held = sa.and_(
            t.c.unit_code == unit_code, t.c.period == period, t.c.state.in_(FLAGGED_STATES)
        )
        await self.session.execute(
            sa.update(t).where(held, t.c.flag_since.is_not(None)).values(flag_event_ids=event_ids)
        )
        rows = await self.session.execute(
            sa.update(t)
            .where(held, t.c.flag_since.is_(None))
            .values(flag_since=since, flag_event_ids=event_ids)
            .returning(t.c.application_id, t.c.unit_code)
        )
        return [FlagChange(r.application_id, r.unit_code, event_ids) for r in rows]

    async def clear(self, *, unit_code: str, period: str) -> list[FlagChange]:
        """Clear the flag of the unit wherever it is under review or holds the title; returns
        the units cleared with the events they had been flagged for."""
        t = application_unit
        flagged = sa.and_(
            t.c.unit_code == unit_code,
            t.c.period == period,
            t.c.state.in_(FLAGGED_STATES),
            t.c.flag_since.is_not(None),
        )
        rows = (
            await self.session.execute(
                sa.select(t.c.application_id, t.c.unit_code, t.c.flag_event_ids)
                .where(flagged)
                .with_for_update()
            )
        ).all()
        if rows:
            await self.session.execute(
                sa.update(t).where(flagged).values(flag_since=None, flag_event_ids=None)
            )
        return [
            FlagChange(r.application_id, r.unit_code, list(r.flag_event_ids or ())) for r in rows
        ]
