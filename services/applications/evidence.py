"""What a unit is submitted on (its evidence, kept as it stands at submission): its status, its
work records as of that day (docs/domain.md section 7: the meeting cadence and the satisfaction),
its self-evaluation and rectifications. Plain rules, no I/O."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.applications.models import UnitIndicatorsRow, UnitStatusRow
from shared.cadence import cadence_of
from shared.campaign import Campaign
from shared.indicators import RatingCounts
from shared.levels import Level
from shared.status import CriterionCounts


@dataclass(frozen=True, slots=True)
class WorkRecords:
    """A unit's stored indicators for a period."""

    meetings_held: tuple[date, ...]
    ratings: RatingCounts  # over every source


def work_records_of(meetings_held: Sequence[date], ratings: dict[str, Any]) -> WorkRecords:
    counts = [RatingCounts(**c) for c in ratings.values()]
    return WorkRecords(
        meetings_held=tuple(meetings_held),
        ratings=RatingCounts(
            satisfied=sum(c.satisfied for c in counts),
            basically_satisfied=sum(c.basically_satisfied for c in counts),
            dissatisfied=sum(c.dissatisfied for c in counts),
        ),
    )


def records_of(stored: UnitIndicatorsRow) -> WorkRecords:
    return work_records_of(stored.meetings_held, stored.ratings)


def cadence_evidence(
    records: WorkRecords, *, campaign: Campaign, level: Level, period_id: str, today: date
) -> dict[str, Any] | None:
    """The cadence kept in the period as of `today`; none for a level without a cadence."""
    cadence = campaign.work_records.cadence.get(level)
    period = campaign.period(period_id)
    if cadence is None or period is None:
        return None
    kept = cadence_of(
        records.meetings_held, cadence=cadence, first=period.start, last=period.end, today=today
    )
    return {
        "cadence": kept.cadence.value,
        "required": kept.required,
        "held": kept.held,
        "missed": [d.isoformat() for d in kept.missed],
        "open": kept.open.isoformat() if kept.open else None,
        "compliance": kept.compliance,
        "kept": kept.kept,
    }


def satisfaction_evidence(records: WorkRecords, *, campaign: Campaign) -> dict[str, Any]:
    ratings = records.ratings
    return ratings.model_dump() | {
        "total": ratings.total,
        "rate": ratings.rate(campaign.work_records.satisfied_ratings),
    }


def evidence_of(
    status: UnitStatusRow | None,
    *,
    unit: Any,
    at: datetime,
    cadence: dict[str, Any] | None = None,
    satisfaction: dict[str, Any] | None = None,
    case_rates: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a unit is submitted on: its status now, the work records (null where this
    service does not know them yet) and its case rates (null where no cases service is
    configured)."""
    zero = CriterionCounts().model_dump()
    return {
        "as_of": at.isoformat(),
        "status": {
            "three_no": True if status is None else status.three_no,
            "version": 0 if status is None else status.version,
            "changed_at": None if status is None else status.changed_at.isoformat(),
            "counts": zero | (status.counts if status else {}),
            "people": zero | (status.people if status else {}),
        },
        "cadence": cadence,
        "satisfaction": satisfaction,
        "case_rates": case_rates,
        "self_evaluation": unit.self_evaluation,
        "rectifications": list(unit.rectifications),
    }
