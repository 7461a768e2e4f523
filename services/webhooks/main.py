"""The webhooks service: subscriptions of endpoints to the changes of a scope (status changes,
warnings, application, dispute and case steps), and their delivery as signed Standard Webhooks,
at least once, in order per unit, retried on the standard schedule (docs/webhooks.md)."""

from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from services.webhooks.config import WebhooksSettings, get_settings
from services.webhooks.consumers import change_consumers
from services.webhooks.dispatcher import Dispatcher
from services.webhooks.repository.deliveries import CHANNEL
from services.webhooks.routes import router
from services.webhooks.service import SubscriptionsService
from shared import boot
from shared.boot import Blueprint, Clock, Parts, Started
from shared.campaign import system_now
from shared.web import database_ready, kafka_ready

MIGRATIONS = Path(__file__).parent / "migrations"


def blueprint(settings: WebhooksSettings) -> Blueprint:
    async def assemble(started: Started) -> Parts:
        dispatcher = Dispatcher(db=started.db, settings=settings, clock=started.clock)
        consumers = change_consumers(
            db=started.db,
            settings=settings,
            registry=started.registry,
            clock=started.clock,
            on_made=dispatcher.wake,
        )
        parts = Parts(
            state={
                "subscriptions": SubscriptionsService(
                    db=started.db,
                    clock=started.clock,
                    allowed=settings.allowed_targets,
                    rotation_overlap=timedelta(seconds=settings.webhooks_rotation_overlap_seconds),
                    on_replay=dispatcher.wake,
                ),
                "dispatcher": dispatcher,
                "change_consumers": consumers,
            },
        )
        if settings.webhooks_run_consumer:
            parts.consumers = dict(consumers)
        if settings.webhooks_run_dispatcher:
            retention = timedelta(days=settings.webhooks_retention_days)
            parts.loops = {
                "webhooks-dispatcher": dispatcher.run,
                "webhooks-purge": lambda: dispatcher.purge(retention),
            }
            parts.caches = {CHANNEL: dispatcher}
        return parts

    return Blueprint(
        name="webhooks",
        title="sanwu webhooks",
        description="Subscriptions of endpoints to the changes of a scope — status changes, "
        "early warnings, application steps, dispute and case steps — delivered as Standard "
        "Webhooks: thin payloads with the feeds' ids, signed `v1` (HMAC-SHA256) and `v1a` "
        "(Ed25519) with key rotation, at least once and in order per unit, retried on the "
        "standard schedule, dead letters replayable; only to public addresses unless the "
        "deployment allows a target.",
        migrations=MIGRATIONS,
        assemble=assemble,
        routers=[router],
        checks={"database": database_ready},
        reported={"kafka": kafka_ready},
        # five consumers, the dispatcher and the purge
        worker_pool_size=8,
    )


def create_app(settings: WebhooksSettings | None = None, *, clock: Clock = system_now) -> FastAPI:
    settings = settings or get_settings()
    return boot.create_app(blueprint(settings), settings, clock=clock)
