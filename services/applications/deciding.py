"""The decisions on submitted units: the city's review (初审: approve or return), the province's
award (命名: award or reject) and its revocation of a title (摘牌). Each decision sets the unit's
state and records its step; the application's state then follows from its units'."""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from services.applications.base import ApplicationsBase
from services.applications.history import record_step
from services.applications.records import Application, Title
from services.applications.refusals import Decision, check_decisions
from services.applications.repository import ApplicationsRepository
from services.applications.schemas import AwardIn, ReviewIn
from services.applications.workflow import (
    AWARD,
    REVIEW,
    Action,
    Stage,
    UnitState,
    application_state,
    require_bureau,
    require_stage,
    require_version,
)
from shared.access.service import Principal
from shared.errors import StateConflict, TitleNotFound


async def decide_unit(
    repository: ApplicationsRepository,
    *,
    application_id: UUID,
    code: str,
    action: Action,
    state: UnitState,
    principal: Principal,
    reason: str | None,
    at: datetime,
) -> None:
    """One unit's new state, and the step that records who decided it and why."""
    await repository.set_unit(application_id, code, state=state, reason=reason)
    await record_step(
        repository.session,
        application_id=application_id,
        action=action,
        at=at,
        unit_code=code,
        principal=principal,
        reason=reason,
    )


async def settle(
    repository: ApplicationsRepository, application_id: UUID, *, now: datetime
) -> None:
    """The application's state, from its units' states once a decision changed them."""
    application = await repository.get(application_id)
    assert application is not None
    await repository.set_application(
        application_id, state=application_state(u.state for u in application.units), now=now
    )


class Deciding(ApplicationsBase):
    async def review(
        self, *, principal: Principal, application_id: UUID, if_match: str | None, body: ReviewIn
    ) -> Application:
        return await self._decide(
            principal=principal, application_id=application_id, if_match=if_match, body=body
        )

    async def award(
        self, *, principal: Principal, application_id: UUID, if_match: str | None, body: AwardIn
    ) -> Application:
        return await self._decide(
            principal=principal, application_id=application_id, if_match=if_match, body=body
        )

    async def _decide(
        self,
        *,
        principal: Principal,
        application_id: UUID,
        if_match: str | None,
        body: ReviewIn | AwardIn,
    ) -> Application:
        stage = Stage.review if isinstance(body, ReviewIn) else Stage.award
        outcomes = REVIEW if stage == Stage.review else AWARD
        decisions: Sequence[Decision] = [(d.code, d.decision, d.reason) for d in body.decisions]
        async with self.db.session() as session:
            repository = await ApplicationsRepository.from_session(session)
            await repository.lock_steps()
            application = await self._acting_on(
                repository, principal=principal, application_id=application_id, stage=stage
            )
            require_version(if_match, application.version)
            check_decisions(application, stage=stage, decisions=decisions)
            now = self.clock()
            for code, decision, reason in decisions:
                action, state = outcomes[decision]
                await decide_unit(
                    repository,
                    application_id=application_id,
                    code=code,
                    action=action,
                    state=state,
                    principal=principal,
                    reason=reason,
                    at=now,
                )
            await settle(repository, application_id, now=now)
            decided = await repository.get(application_id)
        self._on_step()
        assert decided is not None
        return decided

    async def revoke(
        self, *, principal: Principal, code: str, period: str, if_match: str | None, reason: str
    ) -> Title:
        require_stage(principal, self.registry, stage=Stage.award)
        async with self.db.session() as session:
            repository = await ApplicationsRepository.from_session(session)
            await repository.lock_steps()
            titles = await repository.titles(period=period, unit_code=code)
            held = next((t for t in titles if t.state == UnitState.awarded), None)
            if held is None:
                if titles:
                    raise StateConflict(f"the title of {code} for {period} is already revoked")
                raise TitleNotFound(f"unit {code} holds no title for period {period!r}")
            require_bureau(
                principal, self.registry, stage=Stage.award, county_code=held.county_code
            )
            require_version(if_match, held.version)
            now = self.clock()
            await decide_unit(
                repository,
                application_id=held.application_id,
                code=code,
                action=Action.revoked,
                state=UnitState.revoked,
                principal=principal,
                reason=reason,
                at=now,
            )
            await settle(repository, held.application_id, now=now)
            revoked = await repository.titles(period=period, unit_code=code)
        self._on_step()
        return next(t for t in revoked if t.application_id == held.application_id)
