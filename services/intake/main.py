"""The intake service: validates, authorises and durably accepts petition events."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from services.intake.config import IntakeSettings, get_settings
from services.intake.models import outbox
from services.intake.retention import keep_purging
from services.intake.routes import router
from services.intake.service import IntakeService
from shared import kafka
from shared import logging as sanwu_logging
from shared.db import Database
from shared.lifespan import BackgroundTasks
from shared.migrate import upgrade_service
from shared.outbox import OutboxRelay
from shared.registry.cache import UnitRegistry
from shared.web import create_app as create_service_app
from shared.web import database_ready, include_routes, kafka_ready, serving, start_change_listener

MIGRATIONS = Path(__file__).parent / "migrations"


async def migrate(settings: IntakeSettings) -> None:
    await upgrade_service(MIGRATIONS, schema="intake", url=settings.database_url)


def relay(db: Database, settings: IntakeSettings) -> OutboxRelay:
    return OutboxRelay(
        db=db,
        settings=settings,
        table=outbox,
        topic=settings.events_topic,
        batch_size=settings.relay_batch_size,
        idle_poll_seconds=settings.relay_idle_poll_seconds,
        notified=False,
    )


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sanwu_logging.configure(settings.log_level, json=settings.log_json)
        await migrate(settings)
        db = Database.from_settings(settings)
        registry = UnitRegistry(db.engine)
        await registry.refresh()
        app.state.settings = settings
        app.state.db = db
        app.state.registry = registry
        outbox_relay = relay(db, settings) if settings.intake_run_relay else None
        app.state.intake = IntakeService(
            db=db,
            registry=registry,
            petitioner_secret=settings.petitioner_hash_secret,
            future_tolerance=timedelta(seconds=settings.future_tolerance_seconds),
            on_accepted=outbox_relay.wake if outbox_relay else None,
            max_batch_events=settings.max_batch_events,
            gathered_statements=settings.intake_gathered_statements,
        )
        tasks = BackgroundTasks()
        tasks.start("registry-refresh", registry.keep_fresh(settings.registry_refresh_seconds))
        start_change_listener(app, db=db, settings=settings, tasks=tasks)
        tasks.start(
            "free-text-purge",
            keep_purging(
                db,
                retention=timedelta(days=settings.free_text_retention_days),
                interval_seconds=settings.free_text_purge_interval_seconds,
            ),
        )
        if outbox_relay is not None:
            await kafka.ensure_topics_if_reachable(settings)
            tasks.start("intake-relay", outbox_relay.run())
        async with serving(tasks, close=db.dispose):
            yield

    app = create_service_app(
        title="sanwu intake",
        description="Front desks and government systems post petition events here.",
        lifespan=lifespan,
        # Intake accepts events into its outbox while the broker is down: the broker's state
        # is reported, readiness does not depend on it.
        checks={"database": database_ready},
        reported={"kafka": kafka_ready},
        settings=settings,
    )
    include_routes(app, router)
    return app
