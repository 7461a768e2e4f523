"""The reads: an application and its history, the applications and titles under a unit, and
the feed of steps. Readers and bureaus see what their scope covers."""

from uuid import UUID

from services.applications.records import Application, Step, Title
from services.applications.repository import ApplicationsRepository, StepsRepository
from services.applications.workflow import ApplicationState
from shared import cursors
from shared.access.service import Principal
from shared.db import Database
from shared.errors import ApplicationNotFound, InvalidInput, UnitNotFound
from shared.registry.cache import UnitRegistry

FEED_CURSOR = "s1"


def encode_cursor(step_id: int) -> str:
    return cursors.encode(FEED_CURSOR, str(step_id))


def decode_cursor(cursor: str | None) -> int:
    return cursors.decode_seq(FEED_CURSOR, cursor, field="since") if cursor else 0


class ApplicationReads:
    def __init__(self, *, db: Database, registry: UnitRegistry) -> None:
        self.db = db
        self.registry = registry

    async def get(self, *, principal: Principal, application_id: UUID) -> Application:
        async with self.db.session() as session:
            applications = await ApplicationsRepository.from_session(session)
            return await self._readable(applications, principal, application_id)

    async def history(self, *, principal: Principal, application_id: UUID) -> list[Step]:
        async with self.db.session() as session:
            applications = await ApplicationsRepository.from_session(session)
            await self._readable(applications, principal, application_id)
            steps = await StepsRepository.from_session(session)
            return await steps.of_application(application_id)

    async def find(
        self,
        *,
        principal: Principal,
        root: str | None,
        period: str | None,
        state: ApplicationState | None,
    ) -> list[Application]:
        code = await self._readable_root(principal, root)
        async with self.db.session() as session:
            applications = await ApplicationsRepository.from_session(session)
            counties = self._counties_under(await applications.counties(), code)
            found = await applications.find(counties=counties, period=period)
        return [a for a in found if state is None or a.state == state]

    async def feed(
        self, *, principal: Principal, root: str | None, since: str | None, limit: int
    ) -> tuple[list[Step], str]:
        code = await self._readable_root(principal, root)
        after = decode_cursor(since)
        async with self.db.session() as session:
            applications = await ApplicationsRepository.from_session(session)
            counties = self._counties_under(await applications.counties(), code)
            steps = await (await StepsRepository.from_session(session)).feed(
                counties=counties, after=after, limit=limit
            )
        last = steps[-1].step_id if steps else after
        return steps, encode_cursor(last)

    async def titles(self, *, principal: Principal, root: str | None, period: str) -> list[Title]:
        code = await self._readable_root(principal, root)
        async with self.db.session() as session:
            applications = await ApplicationsRepository.from_session(session)
            titles = await applications.titles(period=period)
        return [t for t in titles if self.registry.is_within(t.unit_code, code)]

    async def _readable_root(self, principal: Principal, root: str | None) -> str:
        code = root or principal.scope_code
        if code is None:
            raise InvalidInput(
                "root is required for a key of no scope",
                errors=[{"field": "root", "message": "required", "type": "missing"}],
            )
        if await self.registry.get(code) is None:
            raise UnitNotFound(f"no unit {code} in the registry")
        principal.require_reader_for(self.registry, code)
        return code

    async def _readable(
        self, applications: ApplicationsRepository, principal: Principal, application_id: UUID
    ) -> Application:
        application = await applications.get(application_id)
        if application is None:
            raise ApplicationNotFound(f"no application {application_id}")
        principal.require_reader_for(self.registry, application.county_code)
        return application

    def _counties_under(self, counties: list[str], root: str) -> list[str]:
        return [c for c in counties if self.registry.is_within(c, root)]
