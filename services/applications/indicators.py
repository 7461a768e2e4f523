"""The indicator topic into the service's view of work records (domain.md section 7), as a
consumer group of its own on the shared consumer loop: the highest version per unit and period
wins, so a batch read again changes nothing; malformed messages go to the dead-letter topic.
A submission snapshots from this view each unit's meeting cadence and satisfaction."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.applications.config import ApplicationsSettings
from services.applications.models import metadata
from shared.cadence import cadence_of
from shared.campaign import Campaign
from shared.consumer import BatchConsumer, Counters, DeadLetter, Record, Rejected
from shared.db import Database
from shared.indicators import RatingCounts, UnitIndicators
from shared.levels import Level
from shared.messages import decode, indicator_problems
from shared.repository import Repository

# The latest indicators per unit and period; no row: nothing known yet (the evidence says null).
unit_indicators = sa.Table(
    "unit_indicators",
    metadata,
    sa.Column("unit_code", sa.CHAR(12), primary_key=True),
    sa.Column("period", sa.Text, primary_key=True),
    sa.Column("meetings_held", ARRAY(sa.Date), nullable=False),
    sa.Column("ratings", JSONB, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)

COUNTERS = Counters(
    applied=Counter(
        "sanwu_applications_indicators_applied_total", "Unit indicator messages applied"
    ),
    ignored=Counter(
        "sanwu_applications_indicators_ignored_total",
        "Unit indicator messages at or below the stored version",
    ),
    dead_letters=Counter(
        "sanwu_applications_indicators_dead_letters_total",
        "Malformed unit indicator messages sent to the dead letters",
    ),
)


@dataclass(frozen=True, slots=True)
class Applied:
    applied: int = 0
    ignored: int = 0


@dataclass(frozen=True, slots=True)
class WorkRecords:
    """A unit's stored indicators for a period."""

    meetings_held: tuple[date, ...]
    ratings: RatingCounts  # over every source


def problems_of(message: UnitIndicators, key: bytes | None) -> list[str]:
    problems = indicator_problems(message, key)
    if message.version >= 2**31:  # the version column is an INT
        problems.append("version must lie within 1..2^31-1")
    return problems


def parse(record: Record) -> UnitIndicators | Rejected:
    return decode(
        record,
        UnitIndicators,
        what="unit indicators",
        tombstone="indicators are never deleted",
        problems=problems_of,
    )


def newest_per_key(items: Sequence[UnitIndicators]) -> list[UnitIndicators]:
    newest: dict[bytes, UnitIndicators] = {}
    for item in items:
        if item.key not in newest or item.version > newest[item.key].version:
            newest[item.key] = item
    return list(newest.values())


def _row(message: UnitIndicators) -> dict[str, Any]:
    return {
        "unit_code": message.unit_code,
        "period": message.period,
        "meetings_held": sorted(set(message.meetings_held)),
        "ratings": {str(s): c.model_dump() for s, c in message.ratings.items()},
        "version": message.version,
        "changed_at": message.changed_at,
    }


class IndicatorsRepository(Repository):
    async def save(self, items: Sequence[UnitIndicators]) -> int:
        """Store each unless a row of the same or a newer version is there; the rows written."""
        rows = [_row(m) for m in newest_per_key(items)]
        if not rows:
            return 0
        t = unit_indicators
        statement = insert(t).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=["unit_code", "period"],
            set_={c: statement.excluded[c] for c in ("meetings_held", "ratings", "version")}
            | {"changed_at": statement.excluded.changed_at},
            where=statement.excluded.version > t.c.version,
        )
        result = await self.session.execute(statement)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def work_records(self, codes: Sequence[str], period: str) -> dict[str, WorkRecords]:
        t = unit_indicators
        rows = await self.session.execute(
            sa.select(t.c.unit_code, t.c.meetings_held, t.c.ratings).where(
                t.c.unit_code.in_(list(codes)), t.c.period == period
            )
        )
        return {r.unit_code: work_records_of(r.meetings_held, r.ratings) for r in rows}


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


async def apply_indicators(session: AsyncSession, items: Sequence[UnitIndicators]) -> Applied:
    """The highest version per (unit, period) wins; older or equal versions change nothing."""
    changed = await (await IndicatorsRepository.from_session(session)).save(items)
    return Applied(applied=changed, ignored=len(items) - changed)


class IndicatorConsumer(BatchConsumer[UnitIndicators, Applied]):
    def __init__(self, *, db: Database, settings: ApplicationsSettings) -> None:
        super().__init__(
            name="applications-indicators",
            db=db,
            settings=settings,
            topic=settings.indicator_topic,
            group_id=settings.indicator_consumer_group,
            batch_size=settings.applications_batch_size,
        )

    async def decode(self, record: Record) -> UnitIndicators | Rejected:
        return parse(record)

    async def apply(self, session: AsyncSession, items: Sequence[UnitIndicators]) -> Applied:
        return await apply_indicators(session, items)

    def committed(self, result: Applied) -> None:
        COUNTERS.count(result)

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        COUNTERS.count_dead(letters)
