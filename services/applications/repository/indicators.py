"""The service's view of work records: the latest indicators per unit and period as the
indicator topic says, written in batches by the indicator consumer (newer version wins) and read
by key when a submission snapshots a unit's evidence."""

from collections.abc import Sequence

from sqlmodel import col, select

from services.applications.models import UnitIndicatorsRow, unit_indicators
from services.applications.repository.common import as_json, newer_version_wins, objects
from shared.indicators import UnitIndicators
from shared.repository import Repository, rows_affected

# The dates of each row come as a JSON array (an array of arrays would have to be rectangular).
SAVE_SQL = newer_version_wins(
    unit_indicators,
    rows="""
    SELECT u.unit_code, u.period,
           ARRAY(SELECT d::date FROM jsonb_array_elements_text(u.meetings) AS d ORDER BY 1),
           u.ratings, u.version, u.changed_at
    FROM unnest($1::bpchar[], $2::text[], $3::jsonb[], $4::jsonb[], $5::int[],
                $6::timestamptz[])
         AS u(unit_code, period, meetings, ratings, version, changed_at)
    """,
)


class IndicatorsRepository(Repository):
    async def save(self, items: Sequence[UnitIndicators]) -> int:
        """Store each unless a row of the same or a newer version is there (one message per
        unit and period); the rows written."""
        if not items:
            return 0
        status = await self.connection.execute(
            SAVE_SQL,
            [m.unit_code for m in items],
            [m.period for m in items],
            [as_json(sorted(set(m.meetings_held))) for m in items],
            [as_json({str(s): c.model_dump() for s, c in m.ratings.items()}) for m in items],
            [m.version for m in items],
            [m.changed_at for m in items],
        )
        return rows_affected(status)

    async def latest(self, codes: Sequence[str], period: str) -> dict[str, UnitIndicatorsRow]:
        """The stored indicators of each of these units for the period, where known."""
        t = UnitIndicatorsRow
        found = await objects(
            self.session,
            select(t).where(col(t.unit_code).in_(list(codes)), col(t.period) == period),
        )
        return {i.unit_code: i for i in found}
