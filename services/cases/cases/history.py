"""The history of a case: each step kept forever with what happened when, who recorded it, when
and why, and written to the outbox in the same transaction, to be published to the cases topic
in order."""

from datetime import datetime
from typing import Any

from services.cases.cases.repository import (
    CaseRepository,
    CaseRow,
    CaseStepRow,
    case_fields,
    step_fields,
)
from services.cases.models import case_outbox
from shared.access.service import Principal
from shared.case_steps import Action, Case, CaseStep, Step
from shared.outbox import OutboxMessage, OutboxRepository


async def record_step(
    cases: CaseRepository,
    case: CaseRow,
    principal: Principal,
    *,
    action: Action,
    at: datetime,
    recorded_at: datetime,
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> CaseStepRow:
    """The step that brought `case` to its version. The caller holds the steps' turn
    (`CaseRepository.take_turn`), taken once it held the case's row."""
    step = CaseStepRow(
        step_id=0,
        version=case.version,
        action=action.value,
        at=at,
        recorded_at=recorded_at,
        key_id=principal.key_id,
        role=principal.role.value,
        scope_code=principal.scope_code,
        body=principal.body,
        reason=reason,
        detail=detail or {},
    )
    step_id = await cases.add_step(case.case_id, step)
    fields = case_fields(case)
    fields.pop("content_hash")
    message = CaseStep(
        step_id=step_id,
        case=Case.model_validate(fields),
        step=Step.model_validate(step_fields(step)),
    )
    # Keyed by case: every step of one case on one partition, in order.
    await OutboxRepository(cases.session, case_outbox).add(
        [
            OutboxMessage(
                key=message.key,
                value=message.model_dump_json().encode(),
                headers={"type": "case_step"},
            )
        ]
    )
    return step
