"""The intake service: validates, authorises and durably accepts petition events."""

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from services.intake.case_ratings import CaseRatings
from services.intake.config import IntakeSettings, get_settings
from services.intake.models import outbox
from services.intake.retention import keep_purging
from services.intake.routes import post_event, router
from services.intake.service import IntakeService
from shared import boot
from shared.boot import Blueprint, Parts, Started
from shared.campaign import system_now
from shared.db import Database
from shared.outbox import OutboxRelay
from shared.web import database_ready, kafka_ready

MIGRATIONS = Path(__file__).parent / "migrations"


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


def blueprint(settings: IntakeSettings) -> Blueprint:
    async def assemble(started: Started) -> Parts:
        db = started.db
        outbox_relay = relay(db, settings) if settings.intake_run_relay else None
        intake = IntakeService(
            db=db,
            registry=started.registry,
            petitioner_secret=settings.petitioner_hash_secret,
            future_tolerance=timedelta(seconds=settings.future_tolerance_seconds),
            on_accepted=outbox_relay.wake if outbox_relay else None,
            max_batch_events=settings.max_batch_events,
            gathered_statements=settings.intake_gathered_statements,
        )
        parts = Parts(
            state={"intake": intake},
            relays={"intake-relay": outbox_relay} if outbox_relay else {},
            loops={
                "free-text-purge": lambda: keep_purging(
                    db,
                    retention=timedelta(days=settings.free_text_retention_days),
                    interval_seconds=settings.free_text_purge_interval_seconds,
                )
            },
        )
        if settings.intake_run_case_ratings:
            ratings = CaseRatings(db=db, settings=settings, intake=intake)
            parts.consumers = {"intake-case-ratings": ratings}
        return parts

    return Blueprint(
        name="intake",
        title="sanwu intake",
        description="Front desks and government systems post petition events here.",
        migrations=MIGRATIONS,
        assemble=assemble,
        routers=[router],
        served_first=[post_event],
        # Intake accepts events into its outbox while the broker is down: the broker's state
        # is reported, readiness does not depend on it.
        checks={"database": database_ready},
        reported={"kafka": kafka_ready},
    )


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    return boot.create_app(blueprint(settings), settings, clock=system_now)
