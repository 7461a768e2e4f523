"""What every service's FastAPI app shares: problem+json errors, correlation ids, a body-size
limit, health and metrics routes, and the request-scoped dependencies (session, key, registry)."""

import asyncio
import gc
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from shared import kafka
from shared.access.cache import KeyCache
from shared.access.service import Principal
from shared.config import Settings, get_settings
from shared.db import Database
from shared.errors import (
    DomainError,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    RequestTimeout,
)
from shared.lifespan import BackgroundTasks
from shared.logging import CorrelationIdMiddleware
from shared.problems import document_problems, install_problem_handlers, problem
from shared.ratelimit import KeyRateLimiter

MAX_BODY_BYTES = 1024 * 1024


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async with db.session() as session:
        yield session


# scope="function": the session commits before the response is sent, so a 2xx means durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_principal(request: Request) -> Principal:
    # The header is read here rather than through fastapi.security.HTTPBearer, one dependency
    # less on every request; the scheme is documented in OpenAPI by shared.problems.
    keys: KeyCache = request.app.state.keys
    principal = await keys.authenticate(
        request.headers.get("authorization"),
        address=request.client.host if request.client else "",
    )
    limiter: KeyRateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        limiter.check(principal.key_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def charge_events(request: Request, principal: Principal, *, events: int) -> None:
    """A request carrying several events costs that many of the key's rate limit (429 with
    Retry-After if what remains cannot cover them); get_principal has counted it as one."""
    limiter: KeyRateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:
        limiter.check_batch(principal.key_id, events=events)


def parse_if_match(if_match: str | None, *, of: str) -> int:
    """The version an If-Match header names (`3`, `"3"` or `W/"3"`) of the thing `of` says
    ("the application"): none is 428, anything else 412."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired(f"send If-Match with {of}'s version (its ETag) to change it")
    text = if_match.strip().removeprefix("W/").strip('"')
    # ASCII digits only: a header is Latin-1, and "²" (0xB2) passes str.isdigit() but not int().
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise PreconditionFailed(f"If-Match {if_match!r} is not a version of {of}")
    return int(text)


def correlation_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("correlation_id", ""))


class BodyLimitMiddleware:
    """413 for bodies over the size limit, whether announced by Content-Length or streamed;
    408 for a body not complete within the time limit of the request's start, however it
    trickles in (a slow client holds no connection for long)."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES, timeout_seconds: float = 30.0
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body to limit (a GET)
            return
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(
                PayloadTooLarge(f"the body exceeds {self.max_bytes} bytes"), scope=scope, send=send
            )
            return
        received = 0
        complete = False
        refusal: DomainError | None = None
        deadline = asyncio.get_running_loop().time() + self.timeout_seconds

        async def limited_receive() -> Message:
            # The app sees a disconnect; the refusal is answered here once the app returns.
            nonlocal received, complete, refusal
            if complete:  # the body is in; the app may wait for a disconnect as long as it likes
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                refusal = RequestTimeout(
                    f"the request body did not arrive within {self.timeout_seconds:g} s"
                )
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    refusal = PayloadTooLarge(f"the body exceeds {self.max_bytes} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if refusal is None:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if refusal is None:
                raise
        if refusal is not None:
            await self._reject(refusal, scope=scope, send=send)

    @staticmethod
    async def _reject(refusal: DomainError, *, scope: Scope, send: Send) -> None:
        response = problem(
            refusal.status, title=refusal.title, detail=refusal.detail, slug=refusal.slug
        )

        async def no_body() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, no_body, send)


ReadinessCheck = Callable[[FastAPI], Awaitable[bool]]
# Below Kubernetes' default probe timeout (1 s): a dependency that does not answer at all
# reads as down instead of failing the whole probe.
CHECK_TIMEOUT_SECONDS = 0.8


class ReadinessOut(BaseModel):
    status: Literal["ready", "degraded", "not ready"] = Field(
        description="`ready`: every check passed; `degraded`: what the service needs to do "
        "its job is up, something else is not (200); `not ready`: a required check failed (503)"
    )
    checks: dict[str, bool] = Field(description="Every check by name, required or reported")
    required: list[str] = Field(description="The checks readiness depends on")


async def _passes(check: ReadinessCheck, app: FastAPI) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            return await check(app)
    except Exception:
        return False


def health_router(
    checks: dict[str, ReadinessCheck], reported: dict[str, ReadinessCheck] | None = None
) -> APIRouter:
    """`/readyz` is 503 when one of `checks` fails; `reported` checks are in its body only."""
    router = APIRouter(tags=["operations"])
    every = checks | (reported or {})

    @router.get(
        "/healthz",
        summary="The process is alive",
        description="Always 200 while the process serves requests; checks nothing else.",
        operation_id="getHealth",
    )
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        response_model=ReadinessOut,
        responses={503: {"model": ReadinessOut, "description": "A required check failed"}},
        summary="Whether the service can do its job",
        description="200 when every dependency the service needs to do its job answers, 503 "
        "when one does not. Every check is in the body, also those readiness does not "
        "depend on (intake accepts events while the broker is down, so the broker is reported "
        "but not required there). A check that does not answer within "
        f"{CHECK_TIMEOUT_SECONDS} s counts as failed.",
        operation_id="getReadiness",
    )
    async def readyz(request: Request, response: Response) -> ReadinessOut:
        passed = await asyncio.gather(*(_passes(check, request.app) for check in every.values()))
        results = dict(zip(every, passed, strict=True))
        ready = all(results[name] for name in checks)
        response.status_code = 200 if ready else 503
        status = "not ready" if not ready else "ready" if all(passed) else "degraded"
        return ReadinessOut(status=status, checks=results, required=list(checks))

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        description="The service's metrics in the Prometheus text format.",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
        operation_id="getMetrics",
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def database_ready(app: FastAPI) -> bool:
    db: Database = app.state.db
    return await db.ping()


async def kafka_ready(app: FastAPI) -> bool:
    return await kafka.reachable(app.state.settings, timeout=CHECK_TIMEOUT_SECONDS)


def operation_id_of(route: APIRoute) -> str:
    """A route's operationId when it names none: its function's name in camelCase
    (`get_summary` -> `getSummary`), stable while the function keeps its name."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


DOCS_ASSETS = "/docs/assets"
# The files of Swagger UI the page loads, served by the service itself: an isolated network
# reaches no CDN.
DOCS_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def serve_docs(app: FastAPI) -> None:
    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(DOCS_ASSETS + "/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        media_type = DOCS_FILES.get(name)
        if media_type is None:
            raise NotFound(f"no documentation asset {name!r}")
        return FileResponse(
            Path(str(swagger_ui_path)) / name,
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=86400"},
        )


@asynccontextmanager
async def serving(
    tasks: BackgroundTasks, *, close: Callable[[], Awaitable[None]]
) -> AsyncIterator[None]:
    """The lifespan's serving part: the start-up heap settled while the app serves; then the
    background tasks stop (the last started first) and `close` (the database pool) runs."""
    try:
        with settled_heap():
            yield
    finally:
        await tasks.stop()
        await close()


@contextmanager
def settled_heap() -> Iterator[None]:
    """While a started service runs: what it loaded (modules, the registry, the campaign) lives
    as long as the process, so the garbage collector stops scanning it, and young collections
    run less often, as a request's garbage is short-lived anyway. Full collections of the
    start-up heap were most of intake's latency tail (p99 105 ms -> 47 ms at the same load)."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def create_app(
    *,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], object],
    checks: dict[str, ReadinessCheck],
    reported: dict[str, ReadinessCheck] | None = None,
    settings: Settings | None = None,
) -> FastAPI:
    """`checks`: what the service needs to do its job (`/readyz` is 503 without it);
    `reported`: what `/readyz` reports without depending on it."""
    settings = settings or get_settings()
    app = FastAPI(
        title=title,
        description=description,
        version="1",
        lifespan=lifespan,  # type: ignore[arg-type]
        # /docs is served with assets of its own (see serve_docs); no ReDoc, which needs a CDN.
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id_of,
        # Metrics go to Prometheus (/metrics); FastAPI's OpenTelemetry hooks would only look for
        # providers on every request (3 % of a cached summary's CPU).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.rate_limiter = KeyRateLimiter(settings.rate_limit)
    install_problem_handlers(app)
    document_problems(app)
    app.add_middleware(BodyLimitMiddleware, timeout_seconds=settings.request_body_timeout_seconds)
    app.add_middleware(CorrelationIdMiddleware)
    include_routes(app, health_router(checks, reported))
    serve_docs(app)
    return app


def serve_first(app: FastAPI, endpoint: Callable[[Request], Awaitable[Response]]) -> None:
    """The route of `endpoint`, a read or post that takes its own parameters from the request
    and returns its Response, matched before every other route and run without FastAPI's
    handler: the matching of the routes before it and FastAPI's dependency solving and exit
    stacks came to over half of a cached read's own CPU. The route stays as declared for
    OpenAPI; what the endpoint raises is answered by the app's problem handlers all the same
    (through the app's exception middleware)."""
    routes = app.router.routes
    route = next(r for r in routes if isinstance(r, APIRoute) and r.endpoint is endpoint)
    if route.dependant.dependencies:
        raise TypeError(f"{route.path} has dependencies, which a route served first would not run")
    route.app = _responding(endpoint)
    routes.remove(route)
    routes.insert(0, route)


def _responding(endpoint: Callable[[Request], Awaitable[Response]]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    return app


def include_routes(app: FastAPI, router: APIRouter) -> None:
    """The router's routes as the app's own. `include_router` keeps the router as one route of
    the app that matches the path again inside it: twice the matching on every request, a
    twentieth of a single event's CPU. The routes already carry the router's prefix, tags and
    dependencies."""
    app.router.routes.extend(router.routes)


class JsonRequest(Request):
    """A request whose JSON body is parsed by orjson, several times faster than the standard
    library on a large body (a batch of a thousand events); what orjson refuses (a lone
    surrogate in an escape, NaN) is parsed as before, so every body reads as it did."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                self._json = json.loads(body)
        return self._json


class JsonRoute(APIRoute):
    """A route whose body is read as `JsonRequest` (`APIRouter(route_class=JsonRoute)`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_json_request(request: Request) -> Response:
            return await handler(JsonRequest(request.scope, request.receive))

        return with_json_request
