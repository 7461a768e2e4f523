"""Everything the evaluation runs, wired in one place: used by the web app's lifespan and by
`sanwu evaluation consume`."""

import asyncio
import signal
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from services.evaluation.config import Clock, EvaluationSettings
from services.evaluation.consumer import EvaluationConsumer
from services.evaluation.early_warnings import warning_relay
from services.evaluation.expiry import RollingExpiry
from services.evaluation.models import indicator_outbox, outbox
from services.evaluation.service import EvaluationService
from shared import campaign as campaign_file
from shared import kafka
from shared.campaign import SHANGHAI, Campaign, CurrentCampaign
from shared.db import Database
from shared.lifespan import BackgroundTasks
from shared.migrate import upgrade_service
from shared.outbox import OutboxRelay
from shared.registry.cache import UnitRegistry

log = structlog.get_logger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


def load_campaign(settings: EvaluationSettings, clock: Clock) -> Campaign:
    """The campaign file, checked; a bad one raises `CampaignFileError` naming the line."""
    today = clock.now().astimezone(SHANGHAI).date()
    return campaign_file.load(settings.campaign_file, today=today)


async def migrate(settings: EvaluationSettings) -> None:
    await upgrade_service(MIGRATIONS, schema="evaluation", url=settings.database_url)


def status_relay(db: Database, settings: EvaluationSettings) -> OutboxRelay:
    return OutboxRelay(
        db=db,
        settings=settings,
        table=outbox,
        topic=settings.status_topic,
        batch_size=settings.status_relay_batch_size,
        idle_poll_seconds=settings.status_relay_idle_poll_seconds,
    )


def indicator_relay(db: Database, settings: EvaluationSettings) -> OutboxRelay:
    """The indicator changes, relayed like the status changes (same batch size and poll)."""
    return OutboxRelay(
        db=db,
        settings=settings,
        table=indicator_outbox,
        topic=settings.indicator_topic,
        batch_size=settings.status_relay_batch_size,
        idle_poll_seconds=settings.status_relay_idle_poll_seconds,
    )


@dataclass
class EvaluationWorker:
    settings: EvaluationSettings
    clock: Clock
    campaign: Campaign
    db: Database
    registry: UnitRegistry
    service: EvaluationService
    consumer: EvaluationConsumer
    expiry: RollingExpiry
    relay: OutboxRelay
    indicator_relay: OutboxRelay
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)

    @classmethod
    async def open(cls, settings: EvaluationSettings, *, clock: Clock) -> "EvaluationWorker":
        """Check the campaign first (a bad file stops everything), then migrate and connect."""
        campaign = load_campaign(settings, clock)
        await migrate(settings)
        db = Database.from_settings(settings)
        registry = UnitRegistry(db.engine)
        await registry.refresh()
        await kafka.ensure_topics_if_reachable(settings)
        service = EvaluationService(campaign=campaign, registry=registry)
        return cls(
            settings=settings,
            clock=clock,
            campaign=campaign,
            db=db,
            registry=registry,
            service=service,
            consumer=EvaluationConsumer(
                db=db, settings=settings, service=service, registry=registry, clock=clock
            ),
            expiry=RollingExpiry(
                db=db,
                service=service,
                clock=clock,
                interval=settings.rolling_expiry_seconds,
                campaign=CurrentCampaign(campaign, now=clock.now),
            ),
            relay=status_relay(db, settings),
            indicator_relay=indicator_relay(db, settings),
        )

    def start(self, *, consumer: bool = True, relay: bool = True, expiry: bool = True) -> None:
        self.tasks.start(
            "registry-refresh", self.registry.keep_fresh(self.settings.registry_refresh_seconds)
        )
        if expiry:
            self.tasks.start("evaluation-upkeep", self.expiry.run())
        if relay:
            self.tasks.start("status-relay", self.relay.run())
            self.tasks.start("indicator-relay", self.indicator_relay.run())
            warnings = warning_relay(
                self.db,
                self.settings,
                idle_poll_seconds=self.settings.status_relay_idle_poll_seconds,
            )
            self.tasks.start("warning-relay", warnings.run())
        if consumer:
            self.consumer.start()
        # Attached whether started or not: a paused consumer started again stops with the rest.
        self.tasks.attach("evaluation-consumer", self.consumer.stop)
        log.info(
            "evaluation_started",
            campaign=self.campaign.id,
            periods=self.campaign.period_ids(),
            group=self.settings.group_id,
        )

    async def close(self) -> None:
        await self.tasks.stop()
        await self.db.dispose()


async def run_until_stopped(settings: EvaluationSettings, *, relay: bool = True) -> None:
    """The consumer (and the status relay and rolling expiry) without the web app, until
    SIGINT or SIGTERM."""
    worker = await EvaluationWorker.open(settings, clock=settings.clock())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    worker.start(relay=relay)
    try:
        await stop.wait()
    finally:
        await worker.close()
