"""The cases service: the working-day calendar its limits are counted on, and the disputes of
counted events (filed, decided, reviewed, every step kept and published to the disputes topic
through an outbox)."""

from pathlib import Path

from fastapi import FastAPI

from services.cases.config import CasesSettings, get_settings
from services.cases.consumers import EventConsumer
from services.cases.disputes.routes import router as disputes_router
from services.cases.disputes.service import DisputesService
from services.cases.models import outbox
from services.cases.routes import router
from shared import boot
from shared.boot import Blueprint, Clock, Parts, Started
from shared.calendar.repository import CHANNEL as CALENDAR_CHANNEL
from shared.calendar.store import CalendarStore, Deadlines
from shared.campaign import system_now
from shared.db import Database
from shared.outbox import OutboxRelay
from shared.web import database_ready, kafka_ready

MIGRATIONS = Path(__file__).parent / "migrations"


async def calendar_ready(app: FastAPI) -> bool:
    """The calendar covers this year and the next. Reported, not required: without a year the
    service still serves, and the deadlines that need it say they cannot be computed."""
    deadlines: Deadlines = app.state.deadlines
    return (await deadlines.coverage()).complete


def relay(db: Database, settings: CasesSettings) -> OutboxRelay:
    """Dispute steps to the disputes topic."""
    return OutboxRelay(
        db=db,
        settings=settings,
        table=outbox,
        topic=settings.disputes_topic,
        idle_poll_seconds=settings.cases_relay_idle_poll_seconds,
    )


def blueprint(settings: CasesSettings) -> Blueprint:
    async def assemble(started: Started) -> Parts:
        store = CalendarStore(started.db)
        deadlines = Deadlines(store, clock=started.clock)
        outbox_relay = relay(started.db, settings) if settings.cases_run_relay else None
        consumer = EventConsumer(db=started.db, settings=settings)
        parts = Parts(
            state={
                "deadlines": deadlines,
                "disputes": DisputesService(
                    db=started.db,
                    registry=started.registry,
                    deadlines=deadlines,
                    clock=started.clock,
                    on_step=outbox_relay.wake if outbox_relay else None,
                    limits=started.campaign.get().limits,
                    crash_at=settings.cases_crash_at,
                ),
                "consumer": consumer,
            },
            caches={CALENDAR_CHANNEL: store},
            relays={"cases-relay": outbox_relay} if outbox_relay else {},
        )
        if settings.cases_run_consumer:
            parts.consumers = {"cases-events": consumer}
        return parts

    return Blueprint(
        name="cases",
        title="sanwu cases",
        description="The working-day calendar China uses (statutory days off and make-up "
        "working days), on which the limits of disputes and cases are counted; disputes of "
        "counted events (异议): filed by the unit's side within 5 working days, decided by the "
        "bureau above, reviewed once on request, every step kept with who, when and why.",
        migrations=MIGRATIONS,
        assemble=assemble,
        routers=[router, disputes_router],
        # Disputes are filed while the broker is down (their steps wait in the outbox).
        checks={"database": database_ready},
        reported={"calendar": calendar_ready, "kafka": kafka_ready},
        worker_pool_size=3,
    )


def create_app(settings: CasesSettings | None = None, *, clock: Clock = system_now) -> FastAPI:
    """`clock` is the day the calendar's coverage is judged from."""
    settings = settings or get_settings()
    return boot.create_app(blueprint(settings), settings, clock=clock)
