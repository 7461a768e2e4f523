"""Indicator messages into the service's view of work records (docs/domain.md section 7), as
the indicator consumer (`services.applications.consumers`) applies them: the highest version
per unit and period wins, so a batch read again changes nothing. A submission snapshots from
this view each unit's meeting cadence and satisfaction."""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.applications.repository import IndicatorsRepository
from shared.indicators import UnitIndicators


@dataclass(frozen=True, slots=True)
class Applied:
    applied: int = 0
    ignored: int = 0


def newest_per_key(items: Sequence[UnitIndicators]) -> list[UnitIndicators]:
    newest: dict[bytes, UnitIndicators] = {}
    for item in items:
        if item.key not in newest or item.version > newest[item.key].version:
            newest[item.key] = item
    return list(newest.values())


async def apply_indicators(session: AsyncSession, items: Sequence[UnitIndicators]) -> Applied:
    """The highest version per (unit, period) wins; older or equal versions change nothing."""
    repository = await IndicatorsRepository.from_session(session)
    changed = await repository.save(newest_per_key(items))
    return Applied(applied=changed, ignored=len(items) - changed)
