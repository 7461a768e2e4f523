"""The reporting service: status, summaries against the targets, eligible lists with exports,
the pull feed, work-record indicators and the warnings feed, served from reporting's own read
model of the status, indicator and warning topics."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI

from services.reporting.cache import CHANNEL as SUMMARY_CHANNEL
from services.reporting.cache import STATUS_CHANNEL
from services.reporting.config import ReportingSettings, get_settings
from services.reporting.consumer import StatusConsumer
from services.reporting.record_consumers import IndicatorConsumer, WarningConsumer
from services.reporting.routes import router
from services.reporting.service import ReportingService
from shared.campaign import system_now
from shared.migrate import upgrade_service
from shared.service_start import start_consumers, start_service
from shared.web import create_app as create_service_app
from shared.web import database_ready, include_routes, kafka_ready, serving, start_change_listener

MIGRATIONS = Path(__file__).parent / "migrations"


async def migrate(settings: ReportingSettings) -> None:
    await upgrade_service(MIGRATIONS, schema="reporting", url=settings.database_url)


def create_app(
    settings: ReportingSettings | None = None, *, clock: Callable[[], datetime] = system_now
) -> FastAPI:
    """`clock` is the time the campaign's periods follow (tests move it)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = await start_service(app, settings, clock=clock, migrate=migrate)
        db, registry, tasks = started.db, started.registry, started.tasks
        service = ReportingService(db=db, registry=registry, campaign=started.campaign, clock=clock)
        service.tree.refresh()
        app.state.reporting = service
        for state, kind in (
            ("consumer", StatusConsumer),
            ("indicator_consumer", IndicatorConsumer),
            ("warning_consumer", WarningConsumer),
        ):
            consumer = kind(db=db, settings=settings, registry=registry, on_change=service.changed)
            setattr(app.state, state, consumer)
        start_change_listener(
            app,
            db=db,
            settings=settings,
            tasks=tasks,
            caches={SUMMARY_CHANNEL: service.cache, STATUS_CHANNEL: service.statuses},
        )
        if settings.reporting_run_consumer:
            await start_consumers(
                settings,
                tasks=tasks,
                consumers={
                    "reporting-consumer": app.state.consumer,
                    "reporting-indicator-consumer": app.state.indicator_consumer,
                    "reporting-warning-consumer": app.state.warning_consumer,
                },
            )
        async with serving(tasks, close=db.dispose):
            yield

    app = create_service_app(
        title="sanwu reporting",
        description="Three-no status per unit and period, summaries against the campaign "
        "targets, eligible units with exports, the pull feed of status changes, work-record "
        "indicators (meeting cadence, satisfaction) and the early-warnings feed.",
        lifespan=lifespan,
        # Reporting serves its read model while the broker is down: the broker's state is
        # reported, readiness does not depend on it.
        checks={"database": database_ready},
        reported={"kafka": kafka_ready},
    )
    include_routes(app, router)
    return app
