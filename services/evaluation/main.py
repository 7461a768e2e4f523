"""The evaluation service: applies the campaign's rules to every unit and period, exactly once
in effect, and publishes each status change."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from services.evaluation.config import Clock, EvaluationSettings, get_settings
from services.evaluation.routes import router
from services.evaluation.worker import EvaluationWorker
from shared import logging as sanwu_logging
from shared.campaign import CampaignFileError
from shared.web import create_app as create_service_app
from shared.web import database_ready, include_routes, kafka_ready, serving, start_change_listener

log = structlog.get_logger(__name__)


async def consumer_ready(app: FastAPI) -> bool:
    worker: EvaluationWorker = app.state.worker
    return worker.consumer.running or not app.state.settings.evaluation_run_consumer


def create_app(
    settings: EvaluationSettings | None = None, *, clock: Clock | None = None
) -> FastAPI:
    settings = settings or get_settings()
    clock = clock or settings.clock()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sanwu_logging.configure(settings.log_level, json=settings.log_json)
        try:
            worker = await EvaluationWorker.open(settings, clock=clock)
        except CampaignFileError as exc:
            log.error("campaign_invalid", error=str(exc))
            raise
        app.state.settings = settings
        app.state.db = worker.db
        app.state.registry = worker.registry
        app.state.worker = worker
        start_change_listener(app, db=worker.db, settings=settings, tasks=worker.tasks)
        worker.start(consumer=settings.evaluation_run_consumer, relay=settings.status_relay_enabled)
        async with serving(worker.tasks, close=worker.db.dispose):
            yield

    app = create_service_app(
        title="sanwu evaluation",
        description="Applies the campaign's three-no rules to every unit and period, "
        "publishes each status change, and says what became of each event.",
        lifespan=lifespan,
        checks={"database": database_ready, "kafka": kafka_ready, "consumer": consumer_ready},
    )
    include_routes(app, router)
    return app
