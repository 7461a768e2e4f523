"""The services behind the pages, called with the signed-in user's key: a page can never do
more than that key allows. Their problem+json answers become the same domain errors here, so
the console's error pages speak of them in one place."""

from typing import Any

import httpx
import structlog

from services.console.config import ConsoleSettings
from services.console.sessions import Session
from shared.errors import (
    ApplicationNotFound,
    DependencyUnavailable,
    DomainError,
    EventConflict,
    EventNotFound,
    InvalidInput,
    NotFound,
    OutOfScope,
    PeriodNotFound,
    PreconditionFailed,
    PreconditionRequired,
    RateLimited,
    StateConflict,
    Unauthenticated,
    UnitNotFound,
)

log = structlog.get_logger(__name__)

SERVICE_NAMES = {
    "intake": "登记服务（intake）",
    "evaluation": "评定服务（evaluation）",
    "reporting": "统计服务（reporting）",
    "applications": "申报服务（applications）",
}
NOT_FOUND_BY_SLUG: dict[str, type[NotFound]] = {
    "unit-not-found": UnitNotFound,
    "event-not-found": EventNotFound,
    "period-not-found": PeriodNotFound,
    "application-not-found": ApplicationNotFound,
}


class Services:
    """One HTTP client per service, kept for the process's life."""

    def __init__(self, settings: ConsoleSettings) -> None:
        timeout = httpx.Timeout(settings.console_api_timeout_seconds, connect=3.0)
        # trust_env=False: the configured addresses are called directly, never through a proxy
        # the environment might name.
        self._clients = {
            name: httpx.AsyncClient(base_url=url, timeout=timeout, trust_env=False)
            for name, url in settings.service_urls.items()
        }

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    async def get(
        self, service: str, path: str, *, session: Session, params: dict[str, Any] | None = None
    ) -> Any:
        response = await self.send(service, "GET", path, session=session, params=params)
        return response.json()

    async def send(
        self,
        service: str,
        method: str,
        path: str,
        *,
        session: Session,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """The answer of a call that succeeded (2xx); a domain error for any other."""
        sent = {"Authorization": session.authorization, **(headers or {})}
        correlation = structlog.contextvars.get_contextvars().get("correlation_id")
        if correlation:
            sent["X-Correlation-Id"] = str(correlation)
        params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = await self._clients[service].request(
                method, path, params=params, json=json, headers=sent
            )
        except httpx.HTTPError as exc:
            log.warning("console_service_unreachable", service=service, error=str(exc))
            raise DependencyUnavailable(SERVICE_NAMES[service], str(exc)) from exc
        if response.is_success:
            return response
        raise error_of(service, response)


def error_of(service: str, response: httpx.Response) -> DomainError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    detail = str(body.get("detail") or response.reason_phrase)
    errors = body.get("errors") if isinstance(body.get("errors"), list) else None
    slug = str(body.get("type", "")).rpartition(":")[2]
    status = response.status_code
    if status == 401:
        return Unauthenticated(detail, reason="revoked")
    if status == 403:
        return OutOfScope(detail)
    if status == 404:
        return NOT_FOUND_BY_SLUG.get(slug, NotFound)(detail)
    if status == 409:
        kind = EventConflict if slug == "event-conflict" else StateConflict
        return kind(detail, errors=errors)
    if status == 412:
        return PreconditionFailed(detail)
    if status == 428:
        return PreconditionRequired(detail)
    if status in (400, 422):
        return InvalidInput(detail, errors=errors)
    if status == 429:
        return RateLimited(detail, retry_after=int(response.headers.get("retry-after", "1")))
    return DependencyUnavailable(SERVICE_NAMES[service], f"{status}: {detail}")
