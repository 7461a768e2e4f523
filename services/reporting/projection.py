"""Applying status changes to the read model: each (unit, period, version) once, in order, with
the per-ancestor counts and the feed written in the same transaction."""

from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.cache import StatusKey
from services.reporting.readmodel import CountDeltas, StoredStatus, path_of
from services.reporting.repository import (
    CountRepository,
    FeedRepository,
    ReadModelWrites,
    StatusRepository,
)
from shared.registry.cache import UnitRegistry

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Applied:
    applied: int
    ignored: int
    statuses: tuple[StatusKey, ...] | None = ()  # the statuses it changed (None: any)


async def apply_changes(session: AsyncSession, changes: Sequence[StoredStatus]) -> Applied:
    """Apply changes in the order given; a version at or below the stored one is ignored."""
    if not changes:
        return Applied(applied=0, ignored=0)
    writes = await ReadModelWrites.from_session(session)
    await writes.lock_writes()
    repository = await StatusRepository.from_session(session)
    current: dict[tuple[str, str], StoredStatus | None] = dict(
        await repository.statuses({c.key for c in changes})
    )
    deltas = CountDeltas()
    applied: list[StoredStatus] = []
    for change in changes:
        before = current.get(change.key)
        if before is not None and change.version <= before.version:
            continue
        deltas.replace(before, change)
        current[change.key] = change
        applied.append(change)
    latest = {change.key: change for change in applied}  # the last one per key wins
    await repository.save_statuses(list(latest.values()))
    await (await CountRepository.from_session(session)).add_counts(deltas.nonzero())
    await (await FeedRepository.from_session(session)).append_changes(applied)
    if applied:
        await writes.announce_change(statuses=list(latest))
    return Applied(
        applied=len(applied), ignored=len(changes) - len(applied), statuses=tuple(latest)
    )


async def follow_registry(session: AsyncSession, registry: UnitRegistry) -> int:
    """Move the counts of units the registry has moved (or re-levelled) since they were filed.
    Returns how many units moved."""
    writes = await ReadModelWrites.from_session(session)
    await writes.lock_writes()
    repository = await StatusRepository.from_session(session)
    moved = []
    for unit_code, level, path in await repository.placements():
        now = path_of(registry, unit_code)
        if now is not None and now != (level, path):
            moved.append((unit_code, *now))
    if not moved:
        return 0
    deltas = CountDeltas()
    placement = {unit_code: (level, path) for unit_code, level, path in moved}
    for status in await repository.statuses_of_units(list(placement)):
        deltas.replace(status, status.moved(*placement[status.unit_code]))
    await (await CountRepository.from_session(session)).add_counts(deltas.nonzero())
    await repository.move_units(moved)
    await writes.announce_change(statuses=None)
    log.info("units_moved", units=len(moved))
    return len(moved)
