"""What every service's lifespan does first, one way: logging, the campaign as of the clock,
its schema migrated, the database, the unit registry kept fresh; and its consumers started."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from fastapi import FastAPI

from shared import campaign as campaign_file
from shared import kafka
from shared import logging as sanwu_logging
from shared.campaign import SHANGHAI, CurrentCampaign
from shared.config import Settings
from shared.consumer import BatchConsumer
from shared.db import Database
from shared.lifespan import BackgroundTasks
from shared.registry.cache import UnitRegistry

S = TypeVar("S", bound=Settings)


@dataclass(frozen=True, slots=True)
class Started:
    campaign: CurrentCampaign
    db: Database
    registry: UnitRegistry
    tasks: BackgroundTasks


async def start_service(
    app: FastAPI,
    settings: S,
    *,
    clock: Callable[[], datetime],
    migrate: Callable[[S], Awaitable[None]],
) -> Started:
    """Also keeps the settings, database, registry and tasks in `app.state`."""
    sanwu_logging.configure(settings.log_level, json=settings.log_json)
    today = clock().astimezone(SHANGHAI).date()
    campaign = CurrentCampaign(campaign_file.load(settings.campaign_file, today=today), now=clock)
    await migrate(settings)
    db = Database.from_settings(settings)
    registry = UnitRegistry(db.engine)
    await registry.refresh()
    tasks = BackgroundTasks()
    tasks.start("registry-refresh", registry.keep_fresh(settings.registry_refresh_seconds))
    app.state.settings = settings
    app.state.db = db
    app.state.registry = registry
    app.state.tasks = tasks
    return Started(campaign=campaign, db=db, registry=registry, tasks=tasks)


async def start_consumers(
    settings: Settings,
    *,
    tasks: BackgroundTasks,
    consumers: Mapping[str, BatchConsumer[Any, Any]],
) -> None:
    """Each consumer runs as a background task of that name (the topics are created first if
    Kafka can be reached)."""
    await kafka.ensure_topics_if_reachable(settings)
    for name, consumer in consumers.items():
        consumer.start()
        tasks.attach(name, consumer.stop)
