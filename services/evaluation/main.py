"""The evaluation service: applies the campaign's rules to every unit and period, exactly once
in effect, and publishes each status change."""

from dataclasses import dataclass
from pathlib import Path

import structlog
from fastapi import FastAPI

from services.evaluation.config import Clock, EvaluationSettings, get_settings
from services.evaluation.consumers import DisputeConsumer, EvaluationConsumer
from services.evaluation.live.expiry import RollingExpiry
from services.evaluation.live.service import EvaluationService
from services.evaluation.models import indicator_outbox, outbox
from services.evaluation.routes import router
from services.evaluation.warnings.relay import warning_relay
from shared import boot
from shared.boot import Blueprint, Parts, Started
from shared.calendar.repository import CHANNEL as CALENDAR_CHANNEL
from shared.calendar.store import CalendarStore, Deadlines
from shared.campaign import SHANGHAI, Campaign
from shared.campaign import load as load_campaign_file
from shared.db import Database
from shared.lifespan import BackgroundTasks
from shared.outbox import OutboxRelay
from shared.registry.cache import UnitRegistry
from shared.web import database_ready, kafka_ready

log = structlog.get_logger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class EvaluationWorker:
    """What the routes and the readiness check reach (`app.state.worker`)."""

    clock: Clock
    db: Database
    registry: UnitRegistry
    service: EvaluationService
    consumer: EvaluationConsumer
    expiry: RollingExpiry
    tasks: BackgroundTasks


def load_campaign(settings: EvaluationSettings, clock: Clock) -> Campaign:
    """The campaign file, checked; a bad one raises `CampaignFileError` naming the line."""
    today = clock.now().astimezone(SHANGHAI).date()
    return load_campaign_file(settings.campaign_file, today=today)


def relay(db: Database, settings: EvaluationSettings, *, table: object, topic: str) -> OutboxRelay:
    return OutboxRelay(
        db=db,
        settings=settings,
        table=table,  # type: ignore[arg-type]
        topic=topic,
        batch_size=settings.status_relay_batch_size,
        idle_poll_seconds=settings.status_relay_idle_poll_seconds,
    )


def relays(db: Database, settings: EvaluationSettings) -> dict[str, OutboxRelay]:
    """Status, indicator and warning changes, each to its topic."""
    idle = settings.status_relay_idle_poll_seconds
    return {
        "status-relay": relay(db, settings, table=outbox, topic=settings.status_topic),
        "indicator-relay": relay(
            db, settings, table=indicator_outbox, topic=settings.indicator_topic
        ),
        "warning-relay": warning_relay(db, settings, idle_poll_seconds=idle),
    }


def blueprint(settings: EvaluationSettings, clock: Clock) -> Blueprint:
    async def assemble(started: Started) -> Parts:
        db, registry = started.db, started.registry
        campaign = started.campaign.get()
        calendar = CalendarStore(db)
        service = EvaluationService(
            campaign=campaign,
            registry=registry,
            deadlines=Deadlines(calendar, clock=clock.now),
        )
        consumer = EvaluationConsumer(
            db=db, settings=settings, service=service, registry=registry, clock=clock
        )
        disputes = DisputeConsumer(db=db, settings=settings, service=service, clock=clock)
        expiry = RollingExpiry(
            db=db,
            service=service,
            clock=clock,
            interval=settings.rolling_expiry_seconds,
            campaign=started.campaign,
        )
        worker = EvaluationWorker(
            clock=clock,
            db=db,
            registry=registry,
            service=service,
            consumer=consumer,
            expiry=expiry,
            tasks=started.tasks,
        )
        log.info("evaluation_campaign", campaign=campaign.id, periods=campaign.period_ids())
        parts = Parts(
            state={"worker": worker},
            relays=relays(db, settings) if settings.status_relay_enabled else {},
            loops={"evaluation-upkeep": expiry.run},
            caches={CALENDAR_CHANNEL: calendar},
        )
        if settings.evaluation_run_consumer:
            parts.consumers["evaluation-consumer"] = consumer
            parts.consumers["evaluation-disputes"] = disputes
        else:
            # A paused consumer that a test starts later stops with the rest.
            parts.stops["evaluation-consumer"] = consumer.stop
            parts.stops["evaluation-disputes"] = disputes.stop
        return parts

    return Blueprint(
        name="evaluation",
        title="sanwu evaluation",
        description="Applies the campaign's three-no rules to every unit and period, "
        "publishes each status change, and says what became of each event.",
        migrations=MIGRATIONS,
        assemble=assemble,
        routers=[router],
        checks={"database": database_ready, "kafka": kafka_ready, "consumer": consumer_ready},
    )


async def consumer_ready(app: FastAPI) -> bool:
    worker: EvaluationWorker = app.state.worker
    return worker.consumer.running or not app.state.settings.evaluation_run_consumer


async def migrate(settings: EvaluationSettings) -> None:
    await boot.migrate(blueprint(settings, settings.clock()), settings)


def create_app(
    settings: EvaluationSettings | None = None, *, clock: Clock | None = None
) -> FastAPI:
    settings = settings or get_settings()
    clock = clock or settings.clock()
    return boot.create_app(blueprint(settings, clock), settings, clock=clock.now)
