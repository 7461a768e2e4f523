"""A (unit, period)'s status as stored and as published (`shared.status`)."""

from collections.abc import Mapping
from typing import Any

from services.evaluation.records import COUNTED
from shared.outbox import OutboxMessage
from shared.status import CriterionCounts, UnitStatus


def status_of(row: Mapping[str, Any]) -> UnitStatus:
    ids = row["counting_event_ids"]
    return UnitStatus(
        unit_code=str(row["unit_code"]),
        period=str(row["period"]),
        three_no=bool(row["three_no"]),
        counts=CriterionCounts(**{name: row[name] for name in COUNTED}),
        people=CriterionCounts(**{name: row[f"{name}_people"] for name in COUNTED}),
        counting_event_ids=[str(i) for i in ids],
        changed_at=row["changed_at"],
        version=row["version"],
    )


def message_of(status: UnitStatus, correlation_id: str | None = None) -> OutboxMessage:
    """The status as published (a rebuild has the database write the same,
    `rebuild.repository.status_json`)."""
    headers = {"correlation_id": correlation_id} if correlation_id else {}
    return OutboxMessage(key=status.key, value=status.model_dump_json().encode(), headers=headers)
