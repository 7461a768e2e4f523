"""The decisions on submitted units: the city's review (初审: approve or return), the province's
award (命名: award or reject) and its revocation of a title (摘牌). Each decision sets the unit's
state and records its step; the application's state then follows from its units'."""

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from services.applications.history import record_step
from services.applications.records import Application, Title
from services.applications.refusals import Decision, check_decisions
from services.applications.repository import ApplicationsRepository
from services.applications.schemas import AwardIn, ReviewIn
from services.applications.service.acting import acting_on
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
from shared.db import Database
from shared.errors import StateConflict, TitleNotFound
from shared.registry.cache import UnitRegistry

Decided = tuple[str, Action, UnitState, str | None]  # (unit code, action, new state, reason)


async def record_decisions(
    applications: ApplicationsRepository,
    application_id: UUID,
    *,
    decided: Sequence[Decided],
    principal: Principal,
    at: datetime,
) -> None:
    """Each unit's new state and the step that records who decided it and why; then the
    application's state, from its units' states."""
    for code, action, state, reason in decided:
        await applications.set_unit(application_id, code, state=state, reason=reason)
        await record_step(
            applications.session,
            application_id=application_id,
            action=action,
            at=at,
            unit_code=code,
            principal=principal,
            reason=reason,
        )
    application = await applications.get(application_id)
    assert application is not None
    await applications.set_application(
        application_id, state=application_state(u.state for u in application.units), now=at
    )


class DecidingSteps:
    def __init__(
        self,
        *,
        db: Database,
        registry: UnitRegistry,
        clock: Callable[[], datetime],
        on_step: Callable[[], None],
    ) -> None:
        """`on_step` wakes the relay once steps are committed."""
        self.db = db
        self.registry = registry
        self.clock = clock
        self._on_step = on_step

    async def decide(
        self,
        *,
        principal: Principal,
        application_id: UUID,
        if_match: str | None,
        body: ReviewIn | AwardIn,
    ) -> Application:
        """The city's review (a `ReviewIn`) or the province's award (an `AwardIn`)."""
        stage = Stage.review if isinstance(body, ReviewIn) else Stage.award
        outcomes = REVIEW if stage == Stage.review else AWARD
        decisions: Sequence[Decision] = [(d.code, d.decision, d.reason) for d in body.decisions]
        async with self.db.session() as session:
            applications = await ApplicationsRepository.from_session(session)
            await applications.lock_steps()
            application = await acting_on(
                applications,
                registry=self.registry,
                principal=principal,
                application_id=application_id,
                stage=stage,
            )
            require_version(if_match, application.version)
            check_decisions(application, stage=stage, decisions=decisions)
            await record_decisions(
                applications,
                application_id,
                decided=[(code, *outcomes[choice], reason) for code, choice, reason in decisions],
                principal=principal,
                at=self.clock(),
            )
            decided = await applications.get(application_id)
        self._on_step()
        assert decided is not None
        return decided

    async def revoke(
        self, *, principal: Principal, code: str, period: str, if_match: str | None, reason: str
    ) -> Title:
        require_stage(principal, self.registry, stage=Stage.award)
        async with self.db.session() as session:
            applications = await ApplicationsRepository.from_session(session)
            await applications.lock_steps()
            titles = await applications.titles(period=period, unit_code=code)
            held = next((t for t in titles if t.state == UnitState.awarded), None)
            if held is None:
                if titles:
                    raise StateConflict(f"the title of {code} for {period} is already revoked")
                raise TitleNotFound(f"unit {code} holds no title for period {period!r}")
            require_bureau(
                principal, self.registry, stage=Stage.award, county_code=held.county_code
            )
            require_version(if_match, held.version)
            await record_decisions(
                applications,
                held.application_id,
                decided=[(code, Action.revoked, UnitState.revoked, reason)],
                principal=principal,
                at=self.clock(),
            )
            revoked = await applications.titles(period=period, unit_code=code)
        self._on_step()
        return next(t for t in revoked if t.application_id == held.application_id)
