"""The console: pages in Chinese for bureaus and front desks, served from the other services'
REST APIs with the signed-in user's key. It owns only its sessions."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.console.api import Services
from services.console.application_routes import router as application_router
from services.console.config import ConsoleSettings, get_settings
from services.console.headers import SecurityHeadersMiddleware
from services.console.pages import install_error_pages
from services.console.routes import router
from services.console.service import ConsoleService
from services.console.sessions import SessionStore
from shared.campaign import system_now
from shared.migrate import upgrade_service
from shared.service_start import start_service
from shared.web import create_app as create_service_app
from shared.web import database_ready, include_routes, serving, start_change_listener

MIGRATIONS = Path(__file__).parent / "migrations"
STATIC = Path(__file__).parent / "static"


async def migrate(settings: ConsoleSettings) -> None:
    await upgrade_service(MIGRATIONS, schema="console", url=settings.database_url)


def create_app(
    settings: ConsoleSettings | None = None, *, clock: Callable[[], datetime] = system_now
) -> FastAPI:
    """`clock` is the time sessions expire by and the campaign's periods follow."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = await start_service(app, settings, clock=clock, migrate=migrate)
        db, tasks = started.db, started.tasks
        # The key cache hears of every revocation at once: a revoked key's sessions end on
        # their next page.
        start_change_listener(app, db=db, settings=settings, tasks=tasks)
        services = Services(settings)
        app.state.sessions = SessionStore(
            db=db,
            keys=app.state.keys,
            lifetime=timedelta(hours=settings.console_session_hours),
            idle=timedelta(minutes=settings.console_session_idle_minutes),
            clock=clock,
        )
        app.state.console = ConsoleService(
            services=services, registry=started.registry, campaign=started.campaign, clock=clock
        )
        tasks.start("console-session-purge", app.state.sessions.keep_purging())

        async def close() -> None:
            await services.close()
            await db.dispose()

        async with serving(tasks, close=close):
            yield

    app = create_service_app(
        title="sanwu console",
        description="Pages for people (Chinese): the overview against the targets, drill-down "
        "to units, eligible lists, warnings, applications and the front desk's form.",
        lifespan=lifespan,
        checks={"database": database_ready},
        settings=settings,
    )
    install_error_pages(app)
    app.add_middleware(SecurityHeadersMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    include_routes(app, router)
    include_routes(app, application_router)
    return app
