"""The county's part (申报): creating an application as a draft and submitting it to the city,
each unit's evidence kept as it stands at submission. Both read statuses for eligibility, so
both take the status consumer's lock before the steps lock (the order the consumer takes them
in): no status changes under them unflagged."""

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from services.applications.case_rates import CaseRatesLookup
from services.applications.evidence import (
    cadence_evidence,
    evidence_of,
    records_of,
    satisfaction_evidence,
)
from services.applications.history import record_step
from services.applications.models import UnitIndicatorsRow
from services.applications.records import Application
from services.applications.refusals import Standing, check_units, conflicts, raise_refusals
from services.applications.repository import (
    ApplicationsRepository,
    IndicatorsRepository,
    StatusRepository,
)
from services.applications.schemas import ApplicationIn
from services.applications.service.acting import acting_on
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
from shared.access.service import OUTSIDE, Principal
from shared.campaign import SHANGHAI, ApplicationWindow, Campaign, CurrentCampaign
from shared.db import Database
from shared.errors import InvalidInput, OutOfScope, StateConflict, UnitNotFound
from shared.levels import Level
from shared.registry.cache import UnitRegistry


def window_of(setting: str, campaign: Campaign) -> ApplicationWindow:
    """The window the settings name ("MM-DD/MM-DD"), or else the campaign's."""
    if not setting:
        return campaign.applications.window
    start, end = setting.split("/")
    return ApplicationWindow(start_month_day=start, end_month_day=end)


async def locked(session: AsyncSession) -> tuple[ApplicationsRepository, StatusRepository]:
    """The statuses lock, then the steps lock: the order the status consumer takes them in."""
    statuses = await StatusRepository.from_session(session)
    await statuses.lock()
    applications = await ApplicationsRepository.from_session(session)
    await applications.lock_steps()
    return applications, statuses


async def standing_of(
    applications: ApplicationsRepository,
    statuses: StatusRepository,
    *,
    codes: Sequence[str],
    period: str,
) -> Standing:
    return Standing(
        statuses=await statuses.latest(codes, period),
        live=await applications.live_units(codes, period),
    )


class ApplyingSteps:
    def __init__(
        self,
        *,
        db: Database,
        registry: UnitRegistry,
        campaign: CurrentCampaign,
        window: str,
        clock: Callable[[], datetime],
        on_step: Callable[[], None],
    ) -> None:
        """`window`: the settings' window ("MM-DD/MM-DD"), empty for the campaign's; `on_step`
        wakes the relay once steps are committed."""
        self.db = db
        self.registry = registry
        self._campaign = campaign
        self._window = window
        self.clock = clock
        self._on_step = on_step

    @property
    def campaign(self) -> Campaign:
        return self._campaign.get()

    @property
    def window(self) -> ApplicationWindow:
        return window_of(self._window, self.campaign)

    def _today(self) -> date:
        return self.clock().astimezone(SHANGHAI).date()

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
            applications, statuses = await locked(session)
            standing = await standing_of(
                applications, statuses, codes=[u.code for u in body.units], period=body.period
            )
            await check_units(
                body, registry=self.registry, county_code=county_code, standing=standing
            )
            await applications.add_application(
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
            created = await applications.get(application_id)
        self._on_step()
        assert created is not None
        return created

    async def submit(
        self,
        *,
        principal: Principal,
        application_id: UUID,
        if_match: str | None,
        case_rates: CaseRatesLookup | None = None,
    ) -> Application:
        """`case_rates`: asked for the units' rates before the locks are taken (the version
        checked again under them says the units are the same)."""
        rates = None
        if case_rates is not None:
            async with self.db.session() as session:
                applications = await ApplicationsRepository.from_session(session)
                draft = await self._submittable(
                    applications,
                    principal=principal,
                    application_id=application_id,
                    if_match=if_match,
                )
            rates = await case_rates([u.unit_code for u in draft.units], draft.period)
        async with self.db.session() as session:
            applications, statuses = await locked(session)
            application = await self._submittable(
                applications,
                principal=principal,
                application_id=application_id,
                if_match=if_match,
            )
            codes = [u.unit_code for u in application.units]
            period = application.period
            standing = await standing_of(applications, statuses, codes=codes, period=period)
            raise_refusals(
                [],
                conflicts(standing, codes=codes, period=period, application_id=application_id),
            )
            indicators = await (await IndicatorsRepository.from_session(session)).latest(
                codes, period
            )
            now = self.clock()
            for unit in application.units:
                evidence = evidence_of(
                    standing.statuses.get(unit.unit_code),
                    unit=unit,
                    at=now,
                    case_rates=rates.get(unit.unit_code) if rates else None,
                    **await self._work_records(
                        indicators.get(unit.unit_code), unit_code=unit.unit_code, period=period
                    ),
                )
                await applications.set_unit(
                    application_id, unit.unit_code, state=UnitState.submitted, evidence=evidence
                )
            await applications.set_application(
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
            submitted = await applications.get(application_id)
        self._on_step()
        assert submitted is not None
        return submitted

    async def _submittable(
        self,
        applications: ApplicationsRepository,
        *,
        principal: Principal,
        application_id: UUID,
        if_match: str | None,
    ) -> Application:
        """The draft the key may submit now, at the version it names."""
        application = await acting_on(
            applications,
            registry=self.registry,
            principal=principal,
            application_id=application_id,
            stage=Stage.apply,
        )
        require_version(if_match, application.version)
        if application.state != ApplicationState.draft:
            raise StateConflict(
                f"application {application_id} is {application.state.value}; only a draft "
                "is submitted"
            )
        self._require_window("submitted")
        return application

    async def _work_records(
        self, stored: UnitIndicatorsRow | None, *, unit_code: str, period: str
    ) -> dict[str, Any]:
        """A unit's cadence and satisfaction as of today, when indicators have arrived."""
        unit = await self.registry.get(unit_code)
        if stored is None or unit is None:
            return {}
        records = records_of(stored)
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
                raise OutOfScope(OUTSIDE)
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
