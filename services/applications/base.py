"""What every part of the title's lifecycle shares: the database, the registry, the campaign
and its application window, the clock, and the application a bureau acts on."""

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from services.applications.records import Application
from services.applications.repository import ApplicationsRepository
from services.applications.workflow import Stage, require_bureau, require_stage
from shared.access.service import Principal
from shared.campaign import ApplicationWindow, Campaign, CurrentCampaign, system_now
from shared.db import Database
from shared.errors import ApplicationNotFound
from shared.registry.cache import UnitRegistry


def window_of(setting: str, campaign: Campaign) -> ApplicationWindow:
    """The window the settings name ("MM-DD/MM-DD"), or else the campaign's."""
    if not setting:
        return campaign.applications.window
    start, end = setting.split("/")
    return ApplicationWindow(start_month_day=start, end_month_day=end)


class ApplicationsBase:
    def __init__(
        self,
        *,
        db: Database,
        registry: UnitRegistry,
        campaign: CurrentCampaign,
        window: str = "",
        clock: Callable[[], datetime] = system_now,
        on_step: Callable[[], None] | None = None,
    ) -> None:
        """`window`: the settings' window ("MM-DD/MM-DD"), empty for the campaign's; `on_step`
        wakes the relay once steps are committed."""
        self.db = db
        self.registry = registry
        self._campaign = campaign
        self._window = window
        self.clock = clock
        self._on_step = on_step or (lambda: None)

    @property
    def campaign(self) -> Campaign:
        return self._campaign.get()

    @property
    def window(self) -> ApplicationWindow:
        return window_of(self._window, self.campaign)

    async def _acting_on(
        self,
        repository: ApplicationsRepository,
        *,
        principal: Principal,
        application_id: UUID,
        stage: Stage,
    ) -> Application:
        require_stage(principal, self.registry, stage=stage)
        application = await repository.get(application_id)
        if application is None:
            raise ApplicationNotFound(f"no application {application_id}")
        require_bureau(principal, self.registry, stage=stage, county_code=application.county_code)
        return application
