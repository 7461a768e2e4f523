"""The transport under the typed clients: one HTTP client per service, called with the
signed-in user's key, so a page can never do more than that key allows. Their problem+json
answers become the same domain errors here, so the console's error pages speak of them in one
place."""

from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

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
    "cases": "异议和信访事项服务（cases）",
    "audit": "审计服务（audit）",
}
NOT_FOUND_BY_SLUG: dict[str, type[NotFound]] = {
    "unit-not-found": UnitNotFound,
    "event-not-found": EventNotFound,
    "period-not-found": PeriodNotFound,
    "application-not-found": ApplicationNotFound,
}
# A 503 that says the service is up but has nothing to show yet: the audit log before its
# first checkpoint. Read as "not found (yet)", not as the service being down.
NOT_YET = {"no-checkpoint"}


class Answer(BaseModel):
    """What the console reads of another service's answer: the fields its pages use, and no
    more, so that the service may add fields without the console noticing."""

    model_config = ConfigDict(extra="ignore")


AnswerT = TypeVar("AnswerT", bound=Answer)


class Refusal(Answer):
    """One entry of a problem's `errors`: a refused field, or a refused unit."""

    field: str | None = None
    type: str | None = None
    message: str | None = None
    unit_code: str | None = None
    # A late dispute or review request: the last day it could have been sent.
    dispute_until: str | None = None
    last_day: str | None = None


def refusals_of(errors: list[dict[str, Any]] | None) -> list[Refusal]:
    """A domain error's entries (kept as their problem+json bodies spell them), read again."""
    return [Refusal.model_validate(entry) for entry in errors or []]


class Problem(Answer):
    type: str = ""
    detail: str | None = None
    errors: list[Refusal] | None = None


@dataclass(frozen=True)
class Download:
    """A file from a service, handed on to the browser as it came."""

    content: bytes
    media_type: str
    disposition: str


class ServiceClient:
    """One service's address, kept for the process's life."""

    def __init__(
        self,
        service: str,
        *,
        base_url: str,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.service = service
        # trust_env=False: the configured addresses are called directly, never through a proxy
        # the environment might name.
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            trust_env=False,
            transport=transport,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def get(
        self,
        path: str,
        answer: type[AnswerT],
        *,
        session: Session,
        params: dict[str, Any] | None = None,
    ) -> AnswerT:
        response = await self.send("GET", path, session=session, params=params)
        return answer.model_validate_json(response.content)

    async def download(self, path: str, *, session: Session, params: dict[str, Any]) -> Download:
        response = await self.send("GET", path, session=session, params=params)
        return Download(
            content=response.content,
            media_type=response.headers.get("content-type", "application/octet-stream"),
            disposition=response.headers.get("content-disposition", "attachment"),
        )

    async def send(
        self,
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
            response = await self._client.request(
                method, path, params=params, json=json, headers=sent
            )
        except httpx.HTTPError as exc:
            log.warning("console_service_unreachable", service=self.service, error=str(exc))
            raise DependencyUnavailable(SERVICE_NAMES[self.service], str(exc)) from exc
        if response.is_success:
            return response
        raise error_of(self.service, response)


def error_of(service: str, response: httpx.Response) -> DomainError:
    try:
        problem = Problem.model_validate_json(response.content)
    except ValidationError:
        problem = Problem()
    detail = problem.detail or response.reason_phrase
    # The domain errors carry their entries as the problem+json bodies spell them.
    errors = None if problem.errors is None else [e.model_dump() for e in problem.errors]
    slug = problem.type.rpartition(":")[2]
    status = response.status_code
    if status == 401:
        return Unauthenticated(detail, reason="revoked")
    if status == 403:
        return OutOfScope(detail)
    if status == 404 or (status == 503 and slug in NOT_YET):
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
