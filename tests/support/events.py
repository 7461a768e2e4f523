"""Builders for event payloads as a desk would post them."""

import uuid
from datetime import timedelta
from typing import Any

from shared.campaign import system_now

DEFAULT_TIME = "2018-06-03T09:30:00+08:00"


def new_id() -> str:
    return str(uuid.uuid4())


def visit(
    unit_code: str,
    *,
    destination: str = "city",
    headcount: int = 1,
    occurred_at: str = DEFAULT_TIME,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "event_id": new_id(),
        "type": "petition_visit",
        "unit_code": unit_code,
        "occurred_at": occurred_at,
        "destination_level": destination,
        "headcount": headcount,
        "skip_level": False,
        "non_reception_site": False,
        "law_related": False,
    } | fields


def incident(unit_code: str, *, occurred_at: str = DEFAULT_TIME) -> dict[str, Any]:
    return {
        "event_id": new_id(),
        "type": "incident",
        "unit_code": unit_code,
        "occurred_at": occurred_at,
        "kind": "self_harm",
        "summary": "因信访问题引发的极端事件",
    }


def voided(target: dict[str, Any], *, reason: str = "核查认定不属实") -> dict[str, Any]:
    return {
        "event_id": new_id(),
        "type": "event_voided",
        "unit_code": target["unit_code"],
        "occurred_at": system_now().isoformat(),
        "target_event_id": target["event_id"],
        "reason": reason,
    }


def reattributed(
    target: dict[str, Any], new_unit_code: str, *, reason: str = "改属地"
) -> dict[str, Any]:
    return {
        "event_id": new_id(),
        "type": "event_reattributed",
        "unit_code": target["unit_code"],
        "occurred_at": system_now().isoformat(),
        "target_event_id": target["event_id"],
        "new_unit_code": new_unit_code,
        "reason": reason,
    }


def in_future(minutes: int) -> str:
    return (system_now() + timedelta(minutes=minutes)).isoformat()


def meeting(unit_code: str, *, occurred_at: str = DEFAULT_TIME, **fields: Any) -> dict[str, Any]:
    """A screening meeting (排查调处例会) held by the unit."""
    return {
        "event_id": new_id(),
        "type": "screening_meeting",
        "unit_code": unit_code,
        "occurred_at": occurred_at,
        "attendees": 7,
        "disputes_found": 1,
        "disputes_resolved": 1,
    } | fields


def rating(
    unit_code: str,
    rating: str = "satisfied",
    *,
    source: str = "petitioner",
    occurred_at: str = DEFAULT_TIME,
    **fields: Any,
) -> dict[str, Any]:
    """A satisfaction rating (群众点评) of a matter the unit handled."""
    return {
        "event_id": new_id(),
        "type": "satisfaction_rating",
        "unit_code": unit_code,
        "occurred_at": occurred_at,
        "rating": rating,
        "source": source,
    } | fields
