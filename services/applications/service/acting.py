"""What the bureaus' steps share: the application a bureau acts on, found and checked."""

from uuid import UUID

from services.applications.records import Application
from services.applications.repository import ApplicationsRepository
from services.applications.workflow import Stage, require_bureau, require_stage
from shared.access.service import Principal
from shared.errors import ApplicationNotFound
from shared.registry.cache import UnitRegistry


async def acting_on(
    applications: ApplicationsRepository,
    *,
    registry: UnitRegistry,
    principal: Principal,
    application_id: UUID,
    stage: Stage,
) -> Application:
    """The application, once the key may take the stage's steps (403), the application exists
    (404) and the key's scope covers its county (403), in that order."""
    require_stage(principal, registry, stage=stage)
    application = await applications.get(application_id)
    if application is None:
        raise ApplicationNotFound(f"no application {application_id}")
    require_bureau(principal, registry, stage=stage, county_code=application.county_code)
    return application
