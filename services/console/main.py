"""The console: pages in Chinese for bureaus and front desks, served from the other services'
REST APIs with the signed-in user's key. It owns only its sessions."""

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.console.application_routes import router as application_router
from services.console.case_routes import router as case_router
from services.console.clients import Clients
from services.console.config import ConsoleSettings, get_settings
from services.console.dispute_routes import router as dispute_router
from services.console.headers import SecurityHeadersMiddleware
from services.console.oidc_routes import router as oidc_router
from services.console.pages import install_error_pages
from services.console.routes import router
from services.console.service import ConsoleService
from services.console.sessions import SessionStore
from services.console.trend_routes import router as trend_router
from shared import boot
from shared.boot import Blueprint, Clock, Parts, Started
from shared.campaign import system_now
from shared.ratelimit import FailedAuthentications
from shared.web import database_ready

MIGRATIONS = Path(__file__).parent / "migrations"
STATIC = Path(__file__).parent / "static"


def customise(app: FastAPI) -> None:
    install_error_pages(app)
    app.add_middleware(SecurityHeadersMiddleware)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def blueprint(settings: ConsoleSettings) -> Blueprint:
    async def assemble(started: Started) -> Parts:
        clients = Clients.of(settings)
        # The key cache hears of every revocation at once: a revoked key's sessions end on
        # their next page.
        sessions = SessionStore(
            db=started.db,
            keys=started.keys,
            lifetime=timedelta(hours=settings.console_session_hours),
            idle=timedelta(minutes=settings.console_session_idle_minutes),
            clock=started.clock,
            key_failures=FailedAuthentications(
                settings.console_sign_in_failure_limit, of="for this key"
            ),
        )
        console = ConsoleService(
            clients=clients,
            registry=started.registry,
            campaign=started.campaign,
            clock=started.clock,
        )
        return Parts(
            state={"sessions": sessions, "console": console},
            loops={"console-session-purge": sessions.keep_purging},
            close=[clients.close],
        )

    return Blueprint(
        name="console",
        title="sanwu console",
        description="Pages for people (Chinese): the overview against the targets, drill-down "
        "to units, eligible lists, warnings, applications, disputes of counted events, cases "
        "and the front desk's forms.",
        migrations=MIGRATIONS,
        assemble=assemble,
        routers=[
            router,
            application_router,
            dispute_router,
            case_router,
            trend_router,
            oidc_router,
        ],
        checks={"database": database_ready},
        customise=customise,
    )


def create_app(settings: ConsoleSettings | None = None, *, clock: Clock = system_now) -> FastAPI:
    """`clock` is the time sessions expire by and the campaign's periods follow."""
    settings = settings or get_settings()
    return boot.create_app(blueprint(settings), settings, clock=clock)
