"""The history of a dispute: each step kept forever with who, when and why, and written to the
outbox in the same transaction, to be published to the disputes topic in order."""

import json
from dataclasses import asdict
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.cases.disputes.repository import DisputeRepository, DisputeRow, StepRow
from services.cases.disputes.rules import Action
from services.cases.models import outbox
from shared.access.service import Principal
from shared.outbox import OutboxMessage, OutboxRepository


async def record_step(
    session: AsyncSession,
    dispute: DisputeRow,
    principal: Principal,
    *,
    action: Action,
    reason: str,
    at: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """The step that brought `dispute` to its version. The caller holds the steps' turn
    (`DisputeRepository.take_turn`) since before it changed the dispute."""
    step = StepRow(
        step_id=0,
        version=dispute.version,
        action=action.value,
        at=at,
        key_id=principal.key_id,
        role=principal.role.value,
        scope_code=principal.scope_code,
        reason=reason,
        detail=detail or {},
    )
    disputes = await DisputeRepository.from_session(session)
    step_id = await disputes.add_step(step, dispute.dispute_id)
    message = {
        "schema_version": 1,
        "step_id": step_id,
        "dispute": {k: _plain(v) for k, v in asdict(dispute).items()},
        "step": {k: _plain(v) for k, v in asdict(step).items() if k != "step_id"},
    }
    # Keyed by event: every step of the disputes of one event on one partition, in order.
    await OutboxRepository(session, outbox).add(
        [
            OutboxMessage(
                key=str(dispute.event_id).encode(),
                value=json.dumps(message, ensure_ascii=False).encode(),
                headers={"type": "dispute_step"},
            )
        ]
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value
