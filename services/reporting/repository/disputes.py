"""The disputes of counting events, each as its newest step left it: what the disputes
consumer saves, and which of a status's counting events have a live dispute."""

from collections.abc import Collection, Sequence
from uuid import UUID

from services.reporting.models import disputes
from services.reporting.repository.statements import upsert_newer_sql
from shared.dispute_steps import DisputeStep, newest_per_dispute
from shared.repository import Repository

TABLE = disputes.fullname
SAVED_COLUMNS = ("dispute_id", "event_id", "unit_code", "live", "version")
SAVE_DISPUTES_SQL = (
    upsert_newer_sql(TABLE, SAVED_COLUMNS, keys=("dispute_id",)) + " RETURNING dispute_id"
)
LIVE_AMONG_SQL = f"SELECT DISTINCT event_id FROM {TABLE} WHERE event_id = ANY($1::uuid[]) AND live"


def dispute_row(step: DisputeStep) -> list[object]:
    dispute = step.dispute
    return [dispute.dispute_id, dispute.event_id, dispute.unit_code, step.live, dispute.version]


class DisputeRepository(Repository):
    async def save_disputes(self, steps: Sequence[DisputeStep]) -> int:
        """Keep each dispute as the step of the highest version left it; a step at or below
        the stored version changes nothing. Returns how many disputes changed."""
        rows = [dispute_row(step) for step in newest_per_dispute(steps)]
        if not rows:
            return 0
        return len(await self.connection.fetchmany(SAVE_DISPUTES_SQL, rows))

    async def live_among(self, event_ids: Collection[UUID]) -> set[UUID]:
        """Which of the events have a live dispute (one statement on the event_id index)."""
        rows = await self.connection.fetch(LIVE_AMONG_SQL, list(event_ids))
        return {row["event_id"] for row in rows}
