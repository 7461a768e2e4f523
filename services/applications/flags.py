"""Dynamic management (动态管理): statuses into the service's view, and the flags they raise.

A status for a unit and period that is no longer three-no flags the unit at once wherever an
application holds it under review or with the title, naming the events that count; a later
status that is three-no again (the causing events were voided) clears the flag. Each flag and
each clearing is a step of the application's history, published like any other.

Every status is applied once: a version at or below the stored one changes nothing, so a
batch read again after a crash flags nothing twice. The statuses, the flags and their steps
are written in one transaction, under the status lock; a batch that touches a unit some
application holds also takes the steps lock (`ApplicationsRepository.lock_steps`) before it
changes any application row, as every bureau action does, so a flag and a bureau's decision on
the same unit happen one after the other, never crossed."""

from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.applications.history import record_step
from services.applications.repository import (
    ApplicationsRepository,
    FlagsRepository,
    Key,
    StatusRepository,
)
from services.applications.workflow import Action
from shared.campaign import system_now
from shared.status import UnitStatus

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Applied:
    applied: int = 0
    ignored: int = 0
    flagged: int = 0
    cleared: int = 0


def newer_than_stored(statuses: Sequence[UnitStatus], stored: dict[Key, int]) -> list[UnitStatus]:
    """The statuses to apply, in the order given: each one newer than what is stored and than
    every earlier one of its unit and period."""
    latest = dict(stored)
    newer = []
    for status in statuses:
        key = (status.unit_code, status.period)
        if status.version > latest.get(key, 0):
            latest[key] = status.version
            newer.append(status)
    return newer


async def apply_statuses(session: AsyncSession, statuses: Sequence[UnitStatus]) -> Applied:
    """Apply statuses in the order given (a unit's own in the order published)."""
    if not statuses:
        return Applied()
    stored = await StatusRepository.from_session(session)
    await stored.lock()
    keys = {(s.unit_code, s.period) for s in statuses}
    newer = newer_than_stored(statuses, await stored.stored_versions(keys))
    latest = {(s.unit_code, s.period): s for s in newer}
    await stored.save(list(latest.values()))
    flags = await FlagsRepository.from_session(session)
    held = await flags.keys_with_units(latest.keys())
    if held:
        await (await ApplicationsRepository.from_session(session)).lock_steps()
    flagged = cleared = 0
    for status in newer:
        if (status.unit_code, status.period) in held:
            raised, dropped = await follow(session, flags=flags, status=status)
            flagged += raised
            cleared += dropped
    return Applied(
        applied=len(newer), ignored=len(statuses) - len(newer), flagged=flagged, cleared=cleared
    )


async def follow(
    session: AsyncSession, *, flags: FlagsRepository, status: UnitStatus
) -> tuple[int, int]:
    """Flag or clear the unit's applications after its status changed; (flagged, cleared)."""
    if status.three_no:
        changes = await flags.clear(unit_code=status.unit_code, period=status.period)
        action = Action.flag_cleared
    else:
        changes = await flags.flag(
            unit_code=status.unit_code,
            period=status.period,
            since=status.changed_at,
            event_ids=list(status.counting_event_ids),
        )
        action = Action.flagged
    for change in changes:
        await record_step(
            session,
            application_id=change.application_id,
            unit_code=change.unit_code,
            action=action,
            at=system_now(),
            detail={
                "event_ids": change.event_ids,
                "status_version": status.version,
                "status_changed_at": status.changed_at.isoformat(),
            },
        )
        log.info(
            f"unit_{action.value}",
            application_id=str(change.application_id),
            unit_code=change.unit_code,
            period=status.period,
            status_version=status.version,
        )
    return (0, len(changes)) if status.three_no else (len(changes), 0)
