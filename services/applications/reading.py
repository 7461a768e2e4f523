"""The reads: an application and its history, the applications and titles under a unit, and
the feed of steps. Readers and bureaus see what their scope covers."""

from uuid import UUID

from services.applications.base import ApplicationsBase
from services.applications.records import Application, Step, Title
from services.applications.repository import ApplicationsRepository
from services.applications.workflow import ApplicationState
from shared import cursors
from shared.access.service import Principal
from shared.errors import ApplicationNotFound, InvalidInput, UnitNotFound

FEED_CURSOR = "s1"


def encode_cursor(step_id: int) -> str:
    return cursors.encode(FEED_CURSOR, str(step_id))


def decode_cursor(cursor: str | None) -> int:
    return cursors.decode_seq(FEED_CURSOR, cursor, field="since") if cursor else 0


class Reading(ApplicationsBase):
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
        self, repository: ApplicationsRepository, *, principal: Principal, application_id: UUID
    ) -> Application:
        application = await repository.get(application_id)
        if application is None:
            raise ApplicationNotFound(f"no application {application_id}")
        principal.require_reader_for(self.registry, application.county_code)
        return application

    async def get(self, *, principal: Principal, application_id: UUID) -> Application:
        async with self.db.session() as session:
            repository = await ApplicationsRepository.from_session(session)
            return await self._readable(
                repository, principal=principal, application_id=application_id
            )

    async def history(self, *, principal: Principal, application_id: UUID) -> list[Step]:
        async with self.db.session() as session:
            repository = await ApplicationsRepository.from_session(session)
            await self._readable(repository, principal=principal, application_id=application_id)
            return await repository.steps_of(application_id)

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
            repository = await ApplicationsRepository.from_session(session)
            counties = self._counties_under(await repository.counties(), code)
            found = await repository.find(counties=counties, period=period)
        return [a for a in found if state is None or a.state == state]

    async def feed(
        self, *, principal: Principal, root: str | None, since: str | None, limit: int
    ) -> tuple[list[Step], str]:
        code = await self._readable_root(principal, root)
        after = decode_cursor(since)
        async with self.db.session() as session:
            repository = await ApplicationsRepository.from_session(session)
            counties = self._counties_under(await repository.counties(), code)
            steps = await repository.feed(counties=counties, after=after, limit=limit)
        last = steps[-1].step_id if steps else after
        return steps, encode_cursor(last)

    async def titles(self, *, principal: Principal, root: str | None, period: str) -> list[Title]:
        code = await self._readable_root(principal, root)
        async with self.db.session() as session:
            repository = await ApplicationsRepository.from_session(session)
            titles = await repository.titles(period=period)
        return [t for t in titles if self.registry.is_within(t.unit_code, code)]

    def _counties_under(self, counties: list[str], root: str) -> list[str]:
        return [c for c in counties if self.registry.is_within(c, root)]
