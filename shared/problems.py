"""RFC 9457 problem+json: every error of every service is answered from here."""

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import DependencyUnavailable, DomainError, RateLimited
from shared.events import EVENT_TYPES

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger(__name__)


def problem(
    status: int,
    *,
    title: str,
    detail: str,
    slug: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:sanwu:problem:{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'events', 3, 'petition_visit', 'headcount') -> 'events[3].headcount'."""
    parts: list[str] = []
    for i, item in enumerate(loc):
        if i == 0 and item in ("body", "query", "path", "header"):
            continue
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in EVENT_TYPES or (isinstance(item, str) and item.startswith("function-")):
            continue  # the discriminator tag pydantic puts in the path; not a field
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or (str(loc[0]) if loc else "")


UNION_TAG_ERRORS = {"union_tag_invalid", "union_tag_not_found"}


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    result = []
    for e in errors:
        loc = tuple(e.get("loc", ()))
        if e.get("type") in UNION_TAG_ERRORS:  # pydantic points at the object, not its tag
            loc = (*loc, "type")
        result.append(
            {"field": field_path(loc), "message": e.get("msg", ""), "type": e.get("type")}
        )
    return result


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    headers = None
    if isinstance(exc, DependencyUnavailable):
        headers = {"Retry-After": "5"}
    elif isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, DependencyUnavailable):
        log.warning("dependency_unavailable", dependency=exc.dependency, reason=exc.reason)
    return problem(
        exc.status,
        title=exc.title,
        detail=exc.detail,
        slug=exc.slug,
        errors=exc.errors,
        headers=headers,
    )


async def _request_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc.errors())
    fields = ", ".join(sorted({e["field"] for e in errors if e["field"]}))
    return problem(
        422,
        title="Invalid input",
        detail=f"The request has invalid fields: {fields}" if fields else "The request is invalid",
        slug="validation",
        errors=errors,
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(
        exc.status_code,
        title=str(exc.detail) if exc.status_code < 500 else "Server error",
        detail=str(exc.detail),
        headers=getattr(exc, "headers", None),
    )


async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", error=str(exc))
    return problem(500, title="Server error", detail="An unexpected error occurred")


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)
