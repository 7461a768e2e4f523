"""The county's part (申报): creating an application as a draft and submitting it to the city,
each unit's evidence kept as it stands at submission. Both read statuses for eligibility, so
both take the status consumer's lock before the steps lock (the order the consumer takes them
in): no status changes under them unflagged."""

from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

from services.applications.base import ApplicationsBase
from services.applications.history import record_step
from services.applications.indicators import (
    IndicatorsRepository,
    WorkRecords,
    cadence_evidence,
    satisfaction_evidence,
)
from services.applications.records import Application, StatusNow
from services.applications.refusals import check_units, conflicts, raise_refusals
from services.applications.repository import ApplicationsRepository
from services.applications.schemas import ApplicationIn
from services.applications.workflow import (
    Action,
    ApplicationState,
    Stage,
    UnitState,
    require_bureau,
    require_stage,
    require_version,
)
from shared.access.models import Role
from shared.access.service import Principal
from shared.campaign import SHANGHAI
from shared.errors import InvalidInput, OutOfScope, StateConflict, UnitNotFound
from shared.levels import Level
from shared.status import CriterionCounts


def evidence_of(
    status: StatusNow | None,
    *,
    unit: Any,
    at: datetime,
    cadence: dict[str, Any] | None = None,
    satisfaction: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a unit is submitted on: its status now, and the work records (null where this
    service does not know them yet)."""
    zero = CriterionCounts().model_dump()
    return {
        "as_of": at.isoformat(),
        "status": {
            "three_no": True if status is None else status.three_no,
            "version": 0 if status is None else status.version,
            "changed_at": None
            if status is None or status.changed_at is None
            else status.changed_at.isoformat(),
            "counts": zero | (status.counts if status else {}),
            "people": zero | (status.people if status else {}),
        },
        "cadence": cadence,
        "satisfaction": satisfaction,
        "self_evaluation": unit.self_evaluation,
        "rectifications": list(unit.rectifications),
    }


class Applying(ApplicationsBase):
    def _today(self) -> date:
        return self.clock().astimezone(SHANGHAI).date()

    async def _work_records(
        self, records: WorkRecords | None, *, unit_code: str, period: str
    ) -> dict[str, Any]:
        """A unit's cadence and satisfaction as of today, when indicators have arrived."""
        unit = await self.registry.get(unit_code)
        if records is None or unit is None:
            return {}
        return {
            "cadence": cadence_evidence(
                records,
                campaign=self.campaign,
                level=unit.level,
                period_id=period,
                today=self._today(),
            ),
            "satisfaction": satisfaction_evidence(records, campaign=self.campaign),
        }

    def _require_window(self, what: str) -> None:
        today = self._today()
        if not self.window.is_open(today):
            raise StateConflict(
                f"applications are {what} only in the campaign's application window, "
                f"{self.window.describe()}; today is {today.isoformat()}",
                errors=[
                    {
                        "field": "window",
                        "message": f"the window is {self.window.describe()}",
                        "type": "outside_window",
                        "start_month_day": self.window.start_month_day,
                        "end_month_day": self.window.end_month_day,
                    }
                ],
            )

    def _county_of(self, principal: Principal, requested: str | None) -> str:
        if principal.role == Role.bureau and principal.scope_code is not None:
            if requested is not None and requested != principal.scope_code:
                raise OutOfScope(f"county {requested} is outside this key's scope")
            return principal.scope_code
        if requested is None:
            raise InvalidInput(
                "county_code is required for a key that is not a county bureau's",
                errors=[{"field": "county_code", "message": "required", "type": "missing"}],
            )
        return requested

    def _require_period(self, period_id: str) -> None:
        period = self.campaign.period(period_id)
        if period is None or period.start > self._today():
            known = ", ".join(p.id for p in self.campaign.periods if p.start <= self._today())
            raise InvalidInput(
                f"no period {period_id!r} to apply for; the campaign has {known}",
                errors=[
                    {
                        "field": "period",
                        "message": "not a period of the campaign that has "
                        "begun (rolling is not applied for)",
                        "type": "period",
                    }
                ],
            )

    async def create(self, *, principal: Principal, body: ApplicationIn) -> Application:
        require_stage(principal, self.registry, stage=Stage.apply)
        county_code = self._county_of(principal, body.county_code)
        county = await self.registry.get(county_code)
        if county is None:
            raise UnitNotFound(f"no unit {county_code} in the registry")
        if county.level != Level.county:
            raise InvalidInput(
                f"unit {county_code} is a {county.level.value}; a county applies",
                errors=[{"field": "county_code", "message": "not a county", "type": "unit_level"}],
            )
        require_bureau(principal, self.registry, stage=Stage.apply, county_code=county_code)
        self._require_period(body.period)
        self._require_window("created")
        now = self.clock()
        application_id = uuid4()
        async with self.db.session() as session:
            repository = await ApplicationsRepository.from_session(session)
            await repository.lock_statuses()
            await repository.lock_steps()
            await check_units(
                repository, registry=self.registry, body=body, county_code=county_code
            )
            await repository.add_application(
                application_id=application_id,
                county_code=county_code,
                period=body.period,
                units=[(u.code, u.self_evaluation, list(u.rectifications)) for u in body.units],
                now=now,
            )
            await record_step(
                session,
                application_id=application_id,
                action=Action.created,
                at=now,
                principal=principal,
                detail={"units": [u.code for u in body.units]},
            )
            created = await repository.get(application_id)
        self._on_step()
        assert created is not None
        return created

    async def submit(
        self, *, principal: Principal, application_id: UUID, if_match: str | None
    ) -> Application:
        async with self.db.session() as session:
            repository = await ApplicationsRepository.from_session(session)
            await repository.lock_statuses()
            await repository.lock_steps()
            application = await self._acting_on(
                repository, principal=principal, application_id=application_id, stage=Stage.apply
            )
            require_version(if_match, application.version)
            if application.state != ApplicationState.draft:
                raise StateConflict(
                    f"application {application_id} is {application.state.value}; only a draft "
                    "is submitted"
                )
            self._require_window("submitted")
            codes = [u.unit_code for u in application.units]
            refused = await conflicts(
                repository, codes=codes, period=application.period, application_id=application_id
            )
            raise_refusals([], refused)
            statuses = await repository.statuses(codes, application.period)
            records = await (await IndicatorsRepository.from_session(session)).work_records(
                codes, application.period
            )
            now = self.clock()
            for unit in application.units:
                evidence = evidence_of(
                    statuses.get(unit.unit_code),
                    unit=unit,
                    at=now,
                    **await self._work_records(
                        records.get(unit.unit_code),
                        unit_code=unit.unit_code,
                        period=application.period,
                    ),
                )
                await repository.set_unit(
                    application_id, unit.unit_code, state=UnitState.submitted, evidence=evidence
                )
            await repository.set_application(
                application_id, state=ApplicationState.submitted, now=now
            )
            await record_step(
                session,
                application_id=application_id,
                action=Action.submitted,
                at=now,
                principal=principal,
                detail={"units": codes},
            )
            submitted = await repository.get(application_id)
        self._on_step()
        assert submitted is not None
        return submitted
