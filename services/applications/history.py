"""Recording a step: the history row, kept forever, and its message to the applications topic
(a `shared.application_steps.ApplicationStep`, keyed by county) in the outbox, in the caller's
transaction.

Every transaction that records steps holds the steps lock from before it changes any row of an
application (`ApplicationsRepository.lock_steps`, taken again here in case): steps therefore
commit in step_id order, and the feed, which serves them by step_id, never skips one that
commits late.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from services.applications.models import outbox
from services.applications.records import Step
from services.applications.repository import ApplicationsRepository, StepsRepository
from services.applications.repository.steps import Actor
from services.applications.workflow import Action
from shared.access.service import Principal
from shared.outbox import OutboxMessage, OutboxRepository

SYSTEM: Actor = (None, None, None)  # the service's own steps (flags): no key, role or scope


def actor_of(principal: Principal | None) -> Actor:
    if principal is None:
        return SYSTEM
    return principal.key_id, principal.role.value, principal.scope_code


async def record_step(
    session: AsyncSession,
    *,
    application_id: UUID,
    action: Action,
    at: datetime,
    unit_code: str | None = None,
    principal: Principal | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> Step:
    """One step of an application: who (`principal`; None for the service's own flag steps),
    what, when and why, in the history and in the outbox."""
    await (await ApplicationsRepository.from_session(session)).lock_steps()
    steps = await StepsRepository.from_session(session)
    step_id = await steps.add(
        application_id=application_id,
        unit_code=unit_code,
        action=action,
        actor=actor_of(principal),
        reason=reason,
        detail=detail or {},
        at=at,
    )
    recorded = await steps.get(step_id)
    correlation_id = structlog.contextvars.get_contextvars().get("correlation_id")
    headers = {"correlation_id": str(correlation_id)} if correlation_id else {}
    message = recorded.message()
    await OutboxRepository(session, outbox).add(
        [OutboxMessage(key=message.key, value=message.model_dump_json().encode(), headers=headers)]
    )
    return recorded
