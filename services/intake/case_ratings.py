"""The petitioner's rating of a case's reply is also a `satisfaction_rating` work record of the
case's unit (docs/domain.md sections 7 and 11). Intake reads the `rated` steps from the cases
topic and accepts each as a work record from the petitioner, as a desk posting it would: into
the journal, published on the events topic, counted by evaluation and kept in the audit log.

The record's id is keyed from the case, so a step read again (a redelivery, a restart before
the offsets were committed) is the same record again, a duplicate: counted once."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from services.intake.service import IntakeService
from shared.access.models import Role
from shared.access.service import Principal
from shared.case_steps import Action, CaseStep
from shared.config import Settings
from shared.consumer import BatchConsumer, Counters, DeadLetter, Record, Rejected
from shared.db import Database
from shared.levels import CAMPAIGN_LEVELS
from shared.messages import parse_case_step

Rated = dict[str, Any] | None  # a rating's work record, or None for any other step

# Ids of the ratings' work records: the same case always gives the same id.
NAMESPACE = uuid.UUID("0c6b1f2e-4d3a-4e8b-9a71-5f2c8d3e6b40")
# Who posts them, as the journal records it: the cases service, everywhere.
CASES = Principal(key_id="cases-service", role=Role.admin, scope_code=None)

COUNTERS = Counters(
    Counter("sanwu_intake_case_ratings_accepted_total", "Ratings of cases accepted as records"),
    Counter("sanwu_intake_case_ratings_ignored_total", "Case steps read that were no rating"),
    Counter("sanwu_intake_case_ratings_dead_lettered_total", "Case steps dead-lettered"),
)


@dataclass(frozen=True, slots=True)
class Kept:
    applied: int
    ignored: int


def work_record_of(step: CaseStep) -> dict[str, Any] | None:
    """The satisfaction_rating a `rated` step is; None for any other step."""
    if step.step.action is not Action.rated:
        return None
    case = step.case
    return {
        "event_id": str(uuid.uuid5(NAMESPACE, f"{case.case_id}/rating")),
        "type": "satisfaction_rating",
        "unit_code": case.unit_code,
        "occurred_at": step.step.at.isoformat(),
        "rating": step.step.detail["rating"],
        "source": "petitioner",
        "matter_ref": f"case:{case.case_id}",
    }


class CaseRatings(BatchConsumer[Rated, Kept]):
    def __init__(self, *, db: Database, settings: Settings, intake: IntakeService) -> None:
        super().__init__(
            name="intake-case-ratings",
            db=db,
            settings=settings,
            topic=settings.cases_topic,
            group_id=f"{settings.topic_prefix}intake-case-ratings",
            batch_size=500,
        )
        self.intake = intake

    async def decode(self, record: Record) -> Rated | Rejected:
        parsed = parse_case_step(record)
        return parsed if isinstance(parsed, Rejected) else work_record_of(parsed)

    async def apply(self, session: AsyncSession, items: Sequence[Rated]) -> Kept:
        records = [item for item in items if item is not None and await self._counted(item)]
        if records:
            results = await self.intake.accept_batch(
                items=records, principal=CASES, correlation_id="case-ratings"
            )
            refused = [r for r in results if r.status == "rejected"]
            if refused:  # a rating the journal refuses would be lost: stop and retry instead
                raise RuntimeError(f"case ratings refused: {refused[0].error}")
        return Kept(applied=len(records), ignored=len(items) - len(records))

    async def _counted(self, record: dict[str, Any]) -> bool:
        """Work records are of campaign units: a case of a city or province is rated, not
        counted."""
        unit = await self.intake.registry.get(record["unit_code"])
        return unit is not None and unit.level in CAMPAIGN_LEVELS

    def committed(self, result: Kept) -> None:
        COUNTERS.count(result)

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        COUNTERS.count_dead(letters)
