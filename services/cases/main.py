"""The cases service: the working-day calendar its limits are counted on, the disputes of
counted events (filed, decided, reviewed) and cases (registered, routed, handled, answered,
rated, reviewed, closed), every step kept and published to the disputes or cases topic through
an outbox."""

from pathlib import Path

from fastapi import FastAPI

from services.cases.cases.rate_routes import get_case_rates
from services.cases.cases.rate_routes import router as case_rates_router
from services.cases.cases.reports import STEPS_CHANNEL, CaseReports
from services.cases.cases.routes import router as cases_router
from services.cases.cases.service import CasesService
from services.cases.cases.watch import ClockWatch
from services.cases.config import CasesSettings, get_settings
from services.cases.consumers import EventConsumer
from services.cases.disputes.routes import router as disputes_router
from services.cases.disputes.service import DisputesService
from services.cases.models import case_outbox, outbox, warning_outbox
from services.cases.routes import router
from shared import boot
from shared.boot import Blueprint, Clock, Parts, Started
from shared.calendar.repository import CHANNEL as CALENDAR_CHANNEL
from shared.calendar.store import CalendarStore, Deadlines
from shared.campaign import system_now
from shared.db import Database
from shared.keyed_hash import KeyedHash
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


def case_relay(db: Database, settings: CasesSettings) -> OutboxRelay:
    """Case steps to the cases topic; written a step per transaction, so woken in process."""
    return OutboxRelay(
        db=db,
        settings=settings,
        table=case_outbox,
        topic=settings.cases_topic,
        idle_poll_seconds=settings.cases_relay_idle_poll_seconds,
        notified=False,
    )


def warning_relay(db: Database, settings: CasesSettings) -> OutboxRelay:
    """The warnings of cases' clocks to the warning topic, woken in process."""
    return OutboxRelay(
        db=db,
        settings=settings,
        table=warning_outbox,
        topic=settings.warning_topic,
        idle_poll_seconds=settings.cases_relay_idle_poll_seconds,
        notified=False,
    )


def blueprint(settings: CasesSettings) -> Blueprint:
    async def assemble(started: Started) -> Parts:
        store = CalendarStore(started.db)
        deadlines = Deadlines(store, clock=started.clock)
        outbox_relay = relay(started.db, settings) if settings.cases_run_relay else None
        steps_relay = case_relay(started.db, settings) if settings.cases_run_relay else None
        warnings = warning_relay(started.db, settings) if settings.cases_run_relay else None
        on_warning = warnings.wake if warnings else None
        consumer = EventConsumer(db=started.db, settings=settings)
        limits = started.campaign.get().limits
        reports = CaseReports(
            db=started.db,
            registry=started.registry,
            deadlines=deadlines,
            campaign=started.campaign.get,
            limits=limits.cases,
            clock=started.clock,
        )

        def on_case_step() -> None:
            # This process's own steps count at once; other processes' when notified.
            reports.new_generation()
            if steps_relay is not None:
                steps_relay.wake()

        parts = Parts(
            state={
                "deadlines": deadlines,
                "cases": CasesService(
                    db=started.db,
                    registry=started.registry,
                    deadlines=deadlines,
                    clock=started.clock,
                    petitioner_hash=KeyedHash(settings.petitioner_hash_secret),
                    limits=limits.cases,
                    on_step=on_case_step,
                    on_warning=on_warning,
                    crash_at=settings.cases_crash_at,
                ),
                "disputes": DisputesService(
                    db=started.db,
                    registry=started.registry,
                    deadlines=deadlines,
                    clock=started.clock,
                    on_step=outbox_relay.wake if outbox_relay else None,
                    limits=limits,
                    crash_at=settings.cases_crash_at,
                ),
                "case_reports": reports,
                "consumer": consumer,
            },
            caches={CALENDAR_CHANNEL: store, STEPS_CHANNEL: reports},
            relays=(
                {
                    "cases-relay": outbox_relay,
                    "case-steps-relay": steps_relay,
                    "case-warnings-relay": warnings,
                }
                if outbox_relay and steps_relay and warnings
                else {}
            ),
        )
        if settings.cases_run_consumer:
            parts.consumers = {"cases-events": consumer}
            watch = ClockWatch(
                db=started.db,
                deadlines=deadlines,
                limits=limits.cases,
                clock=started.clock,
                interval_seconds=settings.cases_clock_watch_seconds,
                on_warning=on_warning or (lambda: None),
            )
            parts.loops = {"case-clock-watch": watch.run}
            parts.state["clock_watch"] = watch
        return parts

    return Blueprint(
        name="cases",
        title="sanwu cases",
        description="The working-day calendar China uses (statutory days off and make-up "
        "working days), on which the limits of disputes and cases are counted; disputes of "
        "counted events (异议): filed by the unit's side within 5 working days, decided by the "
        "bureau above, reviewed once on request; and cases (信访事项): registered at one desk, "
        "routed to a handling body, accepted, replied, rated, reviewed and closed on the "
        "regulation's clocks. Every step kept with who, when and why.",
        migrations=MIGRATIONS,
        assemble=assemble,
        routers=[case_rates_router, router, disputes_router, cases_router],
        served_first=[get_case_rates],
        # Disputes are filed while the broker is down (their steps wait in the outbox).
        checks={"database": database_ready},
        reported={"calendar": calendar_ready, "kafka": kafka_ready},
        # the events consumer, three relays and the clock watch
        worker_pool_size=5,
    )


def create_app(settings: CasesSettings | None = None, *, clock: Clock = system_now) -> FastAPI:
    """`clock` is the day the calendar's coverage is judged from."""
    settings = settings or get_settings()
    return boot.create_app(blueprint(settings), settings, clock=clock)
