"""The applications service: the title's lifecycle (申报 -> 初审 -> 命名 -> 动态管理), every step
kept forever and published to the applications topic through an outbox."""

from pathlib import Path

from fastapi import FastAPI

from services.applications.case_rates import CaseRatesSource
from services.applications.config import ApplicationsSettings, get_settings
from services.applications.consumers import IndicatorConsumer, StatusConsumer
from services.applications.material_files import MaterialFiles
from services.applications.models import outbox
from services.applications.routes import router
from services.applications.service import ApplicationsService
from shared import boot
from shared.boot import Blueprint, Clock, Parts, Started
from shared.campaign import system_now
from shared.db import Database
from shared.outbox import OutboxRelay
from shared.web import database_ready, kafka_ready

MIGRATIONS = Path(__file__).parent / "migrations"


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


def blueprint(settings: ApplicationsSettings) -> Blueprint:
    async def assemble(started: Started) -> Parts:
        db = started.db
        outbox_relay = relay(db, settings) if settings.applications_run_relay else None
        wake = outbox_relay.wake if outbox_relay else None
        consumer = StatusConsumer(db=db, settings=settings, on_flag=wake or (lambda: None))
        indicator_consumer = IndicatorConsumer(db=db, settings=settings)
        case_rates = CaseRatesSource(
            settings.cases_url, timeout=settings.applications_cases_timeout_seconds
        )
        parts = Parts(
            state={
                "relay": outbox_relay,
                "applications": ApplicationsService(
                    db=db,
                    registry=started.registry,
                    campaign=started.campaign,
                    window=settings.application_window,
                    clock=started.clock,
                    on_step=wake,
                ),
                "consumer": consumer,
                "indicator_consumer": indicator_consumer,
                "material_files": MaterialFiles(),
                "case_rates": case_rates,
            },
            relays={"applications-relay": outbox_relay} if outbox_relay else {},
            close=[case_rates.close],
        )
        if settings.applications_run_consumer:
            parts.consumers = {
                "applications-consumer": consumer,
                "applications-indicator-consumer": indicator_consumer,
            }
        return parts

    return Blueprint(
        name="applications",
        title="sanwu applications",
        description="Applying for the three-no title: a county bureau's application with each "
        "unit's self-evaluation (自评, 申报), the city's initial review (初审), the province's "
        "award (命名), and the title kept honest afterwards (动态管理): a unit that stops being "
        "three-no is flagged, and the province may revoke a title (摘牌). Every step is kept "
        "with who, when and why, and served as a feed.",
        migrations=MIGRATIONS,
        assemble=assemble,
        routers=[router],
        # Bureaus act while the broker is down (their steps wait in the outbox): the broker's
        # state is reported, readiness does not depend on it.
        checks={"database": database_ready},
        reported={"kafka": kafka_ready},
        worker_pool_size=3,  # the consumers and the relay
    )


def create_app(
    settings: ApplicationsSettings | None = None, *, clock: Clock = system_now
) -> FastAPI:
    """`clock` is the time the campaign's periods and the application window follow."""
    settings = settings or get_settings()
    return boot.create_app(blueprint(settings), settings, clock=clock)
