"""The reporting service: status, summaries against the targets, eligible lists with exports,
the pull feed, work-record indicators and the warnings feed, served from reporting's own read
model of the status, indicator, warning and disputes topics."""

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from services.reporting.cache import CHANNEL as SUMMARY_CHANNEL
from services.reporting.cache import STATUS_CHANNEL
from services.reporting.config import ReportingSettings, get_settings
from services.reporting.consumers import (
    DisputeConsumer,
    IndicatorConsumer,
    ReadModelConsumer,
    StatusConsumer,
    WarningConsumer,
)
from services.reporting.routes import get_status, get_summary, router
from services.reporting.service import ReportingService
from shared import boot
from shared.boot import Blueprint, Clock, Parts, Started
from shared.campaign import system_now
from shared.web import database_ready, kafka_ready

MIGRATIONS = Path(__file__).parent / "migrations"
# The names the consumers have in `app.state` and as background tasks.
CONSUMERS: dict[str, tuple[str, type[ReadModelConsumer[Any]]]] = {
    "consumer": ("reporting-consumer", StatusConsumer),
    "indicator_consumer": ("reporting-indicator-consumer", IndicatorConsumer),
    "warning_consumer": ("reporting-warning-consumer", WarningConsumer),
    "dispute_consumer": ("reporting-dispute-consumer", DisputeConsumer),
}


def blueprint(settings: ReportingSettings) -> Blueprint:
    async def assemble(started: Started) -> Parts:
        db, registry = started.db, started.registry
        service = ReportingService(
            db=db, registry=registry, campaign=started.campaign, clock=started.clock
        )
        service.tree.refresh()
        parts = Parts(
            state={"reporting": service},
            caches={SUMMARY_CHANNEL: service.cache, STATUS_CHANNEL: service.statuses},
        )
        for state, (task, kind) in CONSUMERS.items():
            consumer = kind(db=db, settings=settings, registry=registry, on_change=service.changed)
            parts.state[state] = consumer
            if settings.reporting_run_consumer:
                parts.consumers[task] = consumer
        return parts

    return Blueprint(
        name="reporting",
        title="sanwu reporting",
        description="Three-no status per unit and period, summaries against the campaign "
        "targets, eligible units with exports, the pull feed of status changes, work-record "
        "indicators (meeting cadence, satisfaction) and the early-warnings feed.",
        migrations=MIGRATIONS,
        assemble=assemble,
        routers=[router],
        served_first=[get_summary, get_status],
        # Reporting serves its read model while the broker is down: the broker's state is
        # reported, readiness does not depend on it.
        checks={"database": database_ready},
        reported={"kafka": kafka_ready},
        worker_pool_size=5,  # four consumers and the registry
    )


def create_app(settings: ReportingSettings | None = None, *, clock: Clock = system_now) -> FastAPI:
    """`clock` is the time the campaign's periods follow (tests move it)."""
    settings = settings or get_settings()
    return boot.create_app(blueprint(settings), settings, clock=clock)
