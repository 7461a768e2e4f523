"""The applications service: the title's lifecycle (申报 -> 初审 -> 命名 -> 动态管理), every step
kept forever and published to the applications topic through an outbox."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI

from services.applications.config import ApplicationsSettings, get_settings
from services.applications.consumer import StatusConsumer
from services.applications.indicators import IndicatorConsumer
from services.applications.models import outbox
from services.applications.routes import router
from services.applications.service import ApplicationsService
from shared import kafka
from shared.campaign import system_now
from shared.db import Database
from shared.migrate import upgrade_service
from shared.outbox import OutboxRelay
from shared.service_start import start_consumers, start_service
from shared.web import create_app as create_service_app
from shared.web import database_ready, include_routes, kafka_ready, serving, start_change_listener

MIGRATIONS = Path(__file__).parent / "migrations"


async def migrate(settings: ApplicationsSettings) -> None:
    await upgrade_service(MIGRATIONS, schema="applications", url=settings.database_url)


def relay(db: Database, settings: ApplicationsSettings) -> OutboxRelay:
    """Steps to the applications topic. The outbox has a wake trigger: steps recorded by
    another process (the status consumer's flags) wake it too."""
    return OutboxRelay(
        db=db,
        settings=settings,
        table=outbox,
        topic=settings.application_topic,
        idle_poll_seconds=settings.applications_relay_idle_poll_seconds,
    )


def create_app(
    settings: ApplicationsSettings | None = None, *, clock: Callable[[], datetime] = system_now
) -> FastAPI:
    """`clock` is the time the campaign's periods and the application window follow."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = await start_service(app, settings, clock=clock, migrate=migrate)
        db, tasks = started.db, started.tasks
        outbox_relay = relay(db, settings) if settings.applications_run_relay else None
        app.state.relay = outbox_relay
        app.state.applications = ApplicationsService(
            db=db,
            registry=started.registry,
            campaign=started.campaign,
            window=settings.application_window,
            clock=clock,
            on_step=outbox_relay.wake if outbox_relay else None,
        )
        app.state.consumer = StatusConsumer(
            db=db, settings=settings, on_flag=outbox_relay.wake if outbox_relay else lambda: None
        )
        app.state.indicator_consumer = IndicatorConsumer(db=db, settings=settings)
        start_change_listener(app, db=db, settings=settings, tasks=tasks)
        if outbox_relay is not None:
            await kafka.ensure_topics_if_reachable(settings)
            tasks.start("applications-relay", outbox_relay.run())
        if settings.applications_run_consumer:
            consumers = {
                "applications-consumer": app.state.consumer,
                "applications-indicator-consumer": app.state.indicator_consumer,
            }
            await start_consumers(settings, tasks=tasks, consumers=consumers)
        async with serving(tasks, close=db.dispose):
            yield

    app = create_service_app(
        title="sanwu applications",
        description="Applying for the three-no title: a county bureau's application with each "
        "unit's self-evaluation (自评, 申报), the city's initial review (初审), the province's "
        "award (命名), and the title kept honest afterwards (动态管理): a unit that stops being "
        "three-no is flagged, and the province may revoke a title (摘牌). Every step is kept "
        "with who, when and why, and served as a feed.",
        lifespan=lifespan,
        # Bureaus act while the broker is down (their steps wait in the outbox): the broker's
        # state is reported, readiness does not depend on it.
        checks={"database": database_ready},
        reported={"kafka": kafka_ready},
        settings=settings,
    )
    include_routes(app, router)
    return app
