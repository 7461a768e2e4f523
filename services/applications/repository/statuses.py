"""The service's view of statuses: the latest status per unit and period as the status topic
says, written in batches by the status consumer and its rebuild (newer version wins), and read
by key for eligibility and evidence. Both sides hold the statuses lock."""

from collections.abc import Collection, Sequence

import sqlalchemy as sa
from sqlmodel import col, select

from services.applications.models import UnitStatusRow, unit_status
from services.applications.repository.common import as_json, newer_version_wins, objects
from shared.locks import LockName, lock_key
from shared.repository import Repository
from shared.status import UnitStatus

STATUSES_LOCK = lock_key(LockName.applications_statuses)
Key = tuple[str, str]  # (unit_code, period)

STORED_VERSIONS_SQL = f"""
    SELECT unit_code, period, version FROM {unit_status.fullname}
    WHERE (unit_code, period) IN (SELECT * FROM unnest($1::bpchar[], $2::text[]))
"""
# The counting events of each row come as a JSON array (an array of arrays would have to be
# rectangular).
SAVE_SQL = newer_version_wins(
    unit_status,
    rows="""
    SELECT u.unit_code, u.period, u.three_no,
           ARRAY(SELECT jsonb_array_elements_text(u.event_ids)), u.version, u.changed_at,
           u.counts, u.people
    FROM unnest($1::bpchar[], $2::text[], $3::bool[], $4::jsonb[], $5::int[],
                $6::timestamptz[], $7::jsonb[], $8::jsonb[])
         AS u(unit_code, period, three_no, event_ids, version, changed_at, counts, people)
    """,
)


class StatusRepository(Repository):
    async def lock(self) -> None:
        """The statuses lock: the status consumer takes it before the steps lock, and so do
        the bureaus' actions that read statuses for eligibility, so that the statuses read stay
        the latest until their transaction ends (a unit found eligible cannot lose its status
        unflagged while it is being submitted)."""
        await self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(STATUSES_LOCK)))

    async def latest(self, codes: Sequence[str], period: str) -> dict[str, UnitStatusRow]:
        """The stored status of each of these units for the period (none: three-no)."""
        found = await objects(
            self.session,
            select(UnitStatusRow).where(
                col(UnitStatusRow.unit_code).in_(list(codes)), col(UnitStatusRow.period) == period
            ),
        )
        return {s.unit_code: s for s in found}

    async def stored_versions(self, keys: Collection[Key]) -> dict[Key, int]:
        if not keys:
            return {}
        codes, periods = zip(*keys, strict=True)
        rows = await self.connection.fetch(STORED_VERSIONS_SQL, list(codes), list(periods))
        return {(r["unit_code"], r["period"]): r["version"] for r in rows}

    async def save(self, statuses: Sequence[UnitStatus]) -> None:
        """Store each status unless a row of the same or a newer version is there."""
        if not statuses:
            return
        await self.connection.execute(
            SAVE_SQL,
            [s.unit_code for s in statuses],
            [s.period for s in statuses],
            [s.three_no for s in statuses],
            [as_json(s.counting_event_ids) for s in statuses],
            [s.version for s in statuses],
            [s.changed_at for s in statuses],
            [as_json(s.counts.model_dump()) for s in statuses],
            [as_json(s.people.model_dump()) for s in statuses],
        )
