"""The history of a dispute: each step kept forever with who, when and why, and written to the
outbox in the same transaction, to be published to the disputes topic in order."""

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.cases.disputes.repository import DisputeRepository, DisputeRow, StepRow
from services.cases.models import outbox
from shared.access.service import Principal
from shared.dispute_steps import Action, Dispute, DisputeStep, Step
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
    (`DisputeRepository.take_turn`), taken once it held the dispute's row."""
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
    message = DisputeStep(
        step_id=step_id,
        dispute=Dispute.model_validate(asdict(dispute)),
        step=Step.model_validate({k: v for k, v in asdict(step).items() if k != "step_id"}),
    )
    # Keyed by event: every step of the disputes of one event on one partition, in order.
    await OutboxRepository(session, outbox).add(
        [
            OutboxMessage(
                key=message.key,
                value=message.model_dump_json().encode(),
                headers={"type": "dispute_step"},
            )
        ]
    )
