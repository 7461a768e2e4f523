"""The history of every step, kept forever: a step recorded, and the steps read back with their
application's county and period (an application's history, one step, the feed)."""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select

from services.applications.models import ApplicationRow, StepRow
from services.applications.records import Step
from services.applications.repository.common import FRESH
from services.applications.workflow import Action
from shared.repository import Repository

Actor = tuple[str | None, str | None, str | None]  # (key_id, role, scope_code)
_A, _S = ApplicationRow, StepRow
# A step with its application's county and period, in the order the steps were made.
_STEPS = (
    select(_S, _A.county_code, _A.period)
    .join(_A, col(_A.application_id) == col(_S.application_id))
    .order_by(col(_S.step_id))
    .execution_options(**FRESH)
)


def step_of(row: StepRow, *, county_code: str, period: str) -> Step:
    return Step(
        step_id=row.step_id,
        application_id=row.application_id,
        county_code=county_code,
        period=period,
        unit_code=row.unit_code,
        action=Action(row.action),
        key_id=row.key_id,
        role=row.role,
        scope_code=row.scope_code,
        reason=row.reason,
        detail=row.detail,
        at=row.at,
    )


class StepsRepository(Repository):
    async def add(
        self,
        *,
        application_id: UUID,
        unit_code: str | None,
        action: Action,
        actor: Actor,
        reason: str | None,
        detail: dict[str, Any],
        at: datetime,
    ) -> int:
        """The step's row; returns its step_id."""
        key_id, role, scope_code = actor
        result = await self.session.execute(
            sa.insert(_S)
            .values(
                application_id=application_id,
                unit_code=unit_code,
                action=action.value,
                key_id=key_id,
                role=role,
                scope_code=scope_code,
                reason=reason,
                detail=json.loads(json.dumps(detail, default=str)),
                at=at,
            )
            .returning(col(_S.step_id))
        )
        return int(result.scalar_one())

    async def get(self, step_id: int) -> Step:
        (found,) = await self._steps(col(_S.step_id) == step_id)
        return found

    async def of_application(self, application_id: UUID) -> list[Step]:
        return await self._steps(col(_S.application_id) == application_id)

    async def feed(self, *, counties: Sequence[str], after: int, limit: int) -> list[Step]:
        """The steps after `after` of applications of these counties, at most `limit`."""
        return await self._steps(
            col(_S.step_id) > after, col(_A.county_code).in_(list(counties)), limit=limit
        )

    async def _steps(self, *where: Any, limit: int | None = None) -> list[Step]:
        found = await self.session.execute(_STEPS.where(*where).limit(limit))
        return [step_of(row, county_code=county, period=period) for row, county, period in found]
