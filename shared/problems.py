"""RFC 9457 problem+json: every error of every service is answered from here."""

import json
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.access import refusals
from shared.errors import (
    DependencyUnavailable,
    DomainError,
    OutOfScope,
    RateLimited,
    Unauthenticated,
)
from shared.events import EVENT_TYPES

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger(__name__)


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        # A problem may quote what the client sent (a field name): a lone surrogate from a
        # JSON escape cannot be UTF-8, and is replaced rather than failing the answer.
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", errors="replace")


def problem(
    status: int,
    *,
    title: str,
    detail: str,
    slug: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = problem_body(status, title=title, detail=detail, slug=slug, errors=errors)
    return ProblemResponse(body, status_code=status, headers=headers)


def problem_body(
    status: int,
    *,
    title: str,
    detail: str,
    slug: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:sanwu:problem:{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def problem_of(error: DomainError) -> dict[str, Any]:
    """The problem body of a domain error, for answers that carry several (a batch's results)."""
    return problem_body(
        error.status, title=error.title, detail=error.detail, slug=error.slug, errors=error.errors
    )


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
            {
                "field": as_utf8(field_path(loc)),
                "message": as_utf8(e.get("msg", "")),
                "type": e.get("type"),
            }
        )
    return result


def as_utf8(text: str) -> str:
    """Text that quotes the client (a field name, a tag) with any lone surrogate, which a JSON
    escape can carry but UTF-8 cannot, replaced by "?"."""
    return text.encode("utf-8", errors="replace").decode("utf-8")


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    if isinstance(exc, Unauthenticated | OutOfScope):
        refusals.record(request, exc)
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


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "For validation errors: one entry per bad field.",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": ["string", "null"]},
                },
            },
        },
    },
}
API_ERRORS = {
    "400": "A request that cannot be read (a body that is not JSON text)",
    "401": "No key, or an unknown, revoked or expired key",
    "403": "Outside the key's role or scope",
    "408": "The body did not arrive in time (SANWU_REQUEST_BODY_TIMEOUT_SECONDS)",
    "413": "Body over 1 MiB",
    "422": "Invalid input; `errors` names each field",
    "429": "Over the key's rate limit (a batch counts each of its events), or too many failed "
    "authentications from this address; see Retry-After",
    "500": "Unexpected server error",
    "503": "A dependency is down, or every database connection is busy; nothing was accepted",
    "504": "The database went away while committing: the outcome is unknown; repeat the request",
}


CORRELATION_PARAMETER: dict[str, Any] = {
    "name": "X-Correlation-Id",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Ties the request to its logs and to the messages it causes. Used as sent "
    "when it is 1 to 64 visible ASCII characters; otherwise, or when absent, the service uses "
    "a fresh id. Either way the response's X-Correlation-Id header carries the id used.",
}
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key: `Bearer sanwu_...`",
}


def document_problems(app: FastAPI) -> None:
    """Every error of the API is documented as application/problem+json, and every /v1/ route
    as needing a bearer key."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["Problem"] = PROBLEM_SCHEMA
        content = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        schema["components"]["securitySchemes"] = {"bearer": BEARER_SCHEME}
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                if path.startswith("/v1/"):
                    operation["security"] = [{"bearer": []}]
                    operation.setdefault("parameters", []).append(dict(CORRELATION_PARAMETER))
                responses = operation.setdefault("responses", {})
                defaults = API_ERRORS if path.startswith("/v1/") else {"500": API_ERRORS["500"]}
                for code, description in defaults.items():
                    responses.setdefault(code, {"description": description})
                for code, response in responses.items():
                    if (
                        code.isdigit()
                        and int(code) >= 400
                        and not (path == "/readyz" and code == "503")
                    ):
                        response["content"] = content
                        response.setdefault("description", API_ERRORS.get(code, "Error"))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
