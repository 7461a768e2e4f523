"""What the 申报 pages read from the applications service, and what they ask of it. Every
change sends the version the page was read at as If-Match, so a second submit of the same form
acts once: the service answers the stale version 412."""

import asyncio
from datetime import datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

from services.console.clients.http import Answer, Download, ServiceClient
from services.console.sessions import Session
from shared.errors import PreconditionFailed
from shared.levels import Level


class Flag(Answer):
    since: datetime
    event_ids: list[str]


class EvidenceStatus(Answer):
    three_no: bool


class Evidence(Answer):
    """What the unit was submitted on."""

    status: EvidenceStatus


class ApplicationUnit(Answer):
    code: str
    name: str
    level: Level
    state: str
    self_evaluation: str
    rectifications: list[str]
    evidence: Evidence | None
    decision_reason: str | None
    flag: Flag | None


class Application(Answer):
    application_id: UUID
    county_code: str
    period: str
    state: str
    version: int
    created_at: datetime
    updated_at: datetime
    units: list[ApplicationUnit]


class StepDetail(Answer):
    units: list[str] | None = None


class Step(Answer):
    step_id: int
    action: str
    at: datetime
    unit_code: str | None
    key_id: str | None
    role: str | None
    scope_code: str | None
    reason: str | None
    detail: StepDetail


class TitleUnit(Answer):
    code: str
    name: str
    level: Level


class Title(Answer):
    unit: TitleUnit
    period: str
    state: str
    application_id: UUID
    reason: str | None


class Applications(Answer):
    items: list[Application]


class History(Answer):
    items: list[Step]


class Titles(Answer):
    items: list[Title]


class Created(Answer):
    application_id: UUID


class ApplicationsClient:
    def __init__(self, http: ServiceClient) -> None:
        self.http = http

    async def listing(
        self, session: Session, *, root: str, period: str
    ) -> tuple[list[Application], list[Title]]:
        """The applications of the counties under the root, and the titles there."""
        params = {"root": root, "period": period}
        found, titles = await asyncio.gather(
            self.http.get("/v1/applications", Applications, session=session, params=params),
            self.http.get("/v1/titles", Titles, session=session, params=params),
        )
        return found.items, titles.items

    async def application(
        self, session: Session, application_id: str
    ) -> tuple[Application, list[Step]]:
        """The application, and its history oldest first."""
        path = f"/v1/applications/{application_id}"
        found, history = await asyncio.gather(
            self.http.get(path, Application, session=session),
            self.http.get(f"{path}/history", History, session=session),
        )
        return found, history.items

    async def create(
        self,
        session: Session,
        *,
        period: str,
        units: list[dict[str, Any]],
        county_code: str | None = None,
    ) -> UUID:
        body: dict[str, Any] = {"period": period, "units": units}
        if county_code is not None:
            body["county_code"] = county_code
        response = await self.http.send("POST", "/v1/applications", session=session, json=body)
        return Created.model_validate_json(response.content).application_id

    async def act(
        self,
        session: Session,
        *,
        application_id: str,
        action: str,
        version: str,
        body: dict[str, Any] | None = None,
    ) -> None:
        """submit, review or award, at the version the page was read at."""
        path = f"/v1/applications/{application_id}/{action}"
        await self._change(session, path=path, version=version, body=body)

    async def revoke(
        self, session: Session, *, code: str, period: str, version: str, reason: str
    ) -> None:
        path = f"/v1/titles/{quote(code, safe='')}/{quote(period, safe='')}/revoke"
        await self._change(session, path=path, version=version, body={"reason": reason})

    async def materials(
        self, session: Session, *, application_id: str, file_format: str
    ) -> Download:
        path = f"/v1/applications/{application_id}/materials"
        return await self.http.download(path, session=session, params={"format": file_format})

    async def _change(
        self, session: Session, *, path: str, version: str, body: dict[str, Any] | None
    ) -> None:
        # The page's version, as the service gave it: ASCII digits. Anything else (a form
        # altered, a header that cannot be Latin-1) names no version of the application.
        if not (version.isascii() and version.isdigit()):
            raise PreconditionFailed(f"the form names no version of this application: {version!r}")
        headers = {"If-Match": f'"{version}"'}
        await self.http.send("POST", path, session=session, json=body, headers=headers)
