"""How the stored warnings change to match what the visits give: the pure part, without I/O.

A warning the visits give and none stored is raised (version 1); one whose named events or
detail changed gets the next version; one the visits no longer give as they stand is cleared
(next version, `cleared_at` set). The times are those of `upkeep`'s module docstring.
"""

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from services.evaluation.warnings.finder import UUID_ORDER, Expected, Found
from services.evaluation.warnings.records import StoredWarning


def named_when_cleared(
    stored: Mapping[UUID, StoredWarning], wanted: Mapping[UUID, Expected]
) -> set[UUID]:
    """The events whose corrections' times `changes` may read: those of the warnings that
    are to be cleared."""
    clearing = [
        w
        for i, w in stored.items()
        if w.cleared_at is None and (i not in wanted or not wanted[i].active)
    ]
    named = {e for w in clearing for e in w.event_ids}
    named |= {e for x in wanted.values() if not x.active for e in x.found.event_ids}
    return named


def changes(
    stored: Mapping[UUID, StoredWarning],
    wanted: Mapping[UUID, Expected],
    *,
    accepted: Mapping[UUID, datetime],
    corrected: Mapping[UUID, datetime],
    fallback: datetime | None,
) -> list[StoredWarning]:
    """The next version of each warning that changes, in the order of their ids. `accepted`:
    when intake accepted each visit the warnings raised now name (a warning is raised when the
    latest of them was)."""
    found = []
    for warning_id in sorted(stored.keys() | wanted.keys(), key=UUID_ORDER):
        change = _change(
            stored.get(warning_id),
            wanted.get(warning_id),
            accepted=accepted,
            corrected=corrected,
            fallback=fallback,
        )
        if change is not None:
            found.append(change)
    return found


def _change(
    stored: StoredWarning | None,
    wanted: Expected | None,
    *,
    accepted: Mapping[UUID, datetime],
    corrected: Mapping[UUID, datetime],
    fallback: datetime | None,
) -> StoredWarning | None:
    """The warning's next version, or None when it stays as it is."""
    cleared: datetime | None
    if wanted is None:
        if stored is None or stored.cleared_at is not None:
            return None
        cleared = _cleared_at(stored.event_ids, corrected, fallback or stored.raised_at)
        return replace(stored, cleared_at=cleared, version=stored.version + 1)
    found = wanted.found
    if stored is None:
        raised = max(accepted[e] for e in found.event_ids)
        cleared = None if wanted.active else _cleared_at(found.event_ids, corrected, raised)
        return _stored(found, raised_at=raised, cleared_at=cleared, version=1)
    if wanted.active:
        cleared = None
    elif stored.cleared_at is not None:
        cleared = stored.cleared_at
    else:
        cleared = _cleared_at(found.event_ids, corrected, fallback or stored.raised_at)
    same = (
        stored.event_ids == found.event_ids
        and stored.detail == found.detail
        and (stored.cleared_at is None) == (cleared is None)
    )
    if same:
        return None
    return _stored(
        found, raised_at=stored.raised_at, cleared_at=cleared, version=stored.version + 1
    )


def _cleared_at(
    event_ids: Iterable[UUID], corrected: Mapping[UUID, datetime], fallback: datetime
) -> datetime:
    return max((corrected[e] for e in event_ids if e in corrected), default=fallback)


def _stored(
    found: Found, *, raised_at: datetime, cleared_at: datetime | None, version: int
) -> StoredWarning:
    return StoredWarning(
        warning_id=found.warning_id,
        kind=found.kind,
        unit_code=found.unit_code,
        scope=found.scope,
        cause_at=found.cause_at,
        raised_at=raised_at,
        cleared_at=cleared_at,
        event_ids=found.event_ids,
        detail=found.detail,
        version=version,
    )
