"""What every service's FastAPI app shares: problem+json errors, correlation ids, a body-size
limit, health and metrics routes, and the request-scoped dependencies (session, key, registry)."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.access import service as access_service
from shared.access.service import Principal
from shared.db import Database
from shared.errors import PayloadTooLarge
from shared.logging import CorrelationIdMiddleware
from shared.problems import install_problem_handlers, problem
from shared.registry.cache import UnitRegistry

MAX_BODY_BYTES = 1024 * 1024


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async with db.session() as session:
        yield session


# scope="function": the session commits before the response is sent, so a 2xx means durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_principal(
    session: SessionDep,
    authorization: Annotated[str | None, Header(description="Bearer <key>")] = None,
) -> Principal:
    return await access_service.authenticate(await session.connection(), authorization)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_registry(request: Request) -> UnitRegistry:
    registry: UnitRegistry = request.app.state.registry
    return registry


RegistryDep = Annotated[UnitRegistry, Depends(get_registry)]


def correlation_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("correlation_id", ""))


class BodySizeLimitMiddleware:
    """413 for bodies over the limit, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise PayloadTooLarge(f"the body exceeds {self.max_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            title="Request body too large",
            detail=f"the body exceeds {self.max_bytes} bytes",
            slug="payload-too-large",
        )
        await response(scope, receive, send)


ReadinessCheck = Callable[[FastAPI], Awaitable[bool]]


def health_router(checks: dict[str, ReadinessCheck]) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="The database and the broker are reachable")
    async def readyz(request: Request, response: Response) -> dict[str, object]:
        results = {name: await check(request.app) for name, check in checks.items()}
        ready = all(results.values())
        response.status_code = 200 if ready else 503
        return {"status": "ready" if ready else "not ready", "checks": results}

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def database_ready(app: FastAPI) -> bool:
    db: Database = app.state.db
    return await db.ping()


def create_app(
    *,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], object],
    checks: dict[str, ReadinessCheck],
) -> FastAPI:
    app = FastAPI(title=title, description=description, version="1", lifespan=lifespan)  # type: ignore[arg-type]
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware)
    app.add_middleware(CorrelationIdMiddleware)
    app.include_router(health_router(checks))
    return app
