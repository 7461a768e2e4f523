"""The one way every service starts, as a web app (`create_app`) or as a worker without one
(`run_until_stopped`, the `consume` commands).

A service describes itself once, in its `main.py`, as a `Blueprint`: its name (its schema and
its log's name), its migrations, its routes and readiness checks, and `assemble`, which builds
its parts from what every service starts with (`Started`: settings, clock, campaign, database,
registry, key cache). `start` does the rest the same way for all of them: logging, the campaign
checked, the schemas waited for until `sanwu db migrate` has migrated them, the database, the
registry kept fresh, the parts' relays, loops and consumers started as background tasks (each
restarting itself through `shared.retry`), the change listener keeping the caches exact.
Everything stops in reverse order.
"""

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request, Response

from shared import campaign as campaign_file
from shared import kafka
from shared import logging as sanwu_logging
from shared import migrate as migrate_module
from shared.access.cache import CHANNEL as KEY_CHANNEL
from shared.access.cache import KeyCache
from shared.asyncapi import asyncapi_router, serves_asyncapi
from shared.campaign import SHANGHAI, CampaignFileError, CurrentCampaign
from shared.config import Settings
from shared.consumer import BatchConsumer
from shared.db import Database
from shared.lifespan import BackgroundTasks, Stop
from shared.migrate import upgrade_service
from shared.notifications import ChangeListener, Invalidated
from shared.outbox import OutboxRelay
from shared.ratelimit import FailedAuthentications
from shared.registry.cache import UnitRegistry
from shared.web import ReadinessCheck, include_routes, serve_first, serving
from shared.web import create_app as create_web_app

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Started:
    """What every service has once started, to assemble its own parts from."""

    settings: Settings
    clock: Clock
    campaign: CurrentCampaign
    db: Database
    registry: UnitRegistry
    keys: KeyCache
    tasks: BackgroundTasks


@dataclass
class Parts:
    """What a service runs besides its routes. `state` is kept in `app.state` by name (what the
    routes and readiness checks reach); relays, loops and consumers run as background tasks of
    their names; `caches` are kept exact by the change listener, by channel; `stops` are
    stopped with the rest without being started here (a consumer a test starts later)."""

    state: dict[str, object] = field(default_factory=dict)
    relays: dict[str, OutboxRelay] = field(default_factory=dict)
    loops: dict[str, Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=dict)
    consumers: dict[str, BatchConsumer[Any, Any]] = field(default_factory=dict)
    caches: dict[str, Invalidated] = field(default_factory=dict)
    stops: dict[str, Stop] = field(default_factory=dict)
    close: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Blueprint:
    name: str
    title: str
    description: str
    migrations: Path
    assemble: Callable[[Started], Awaitable[Parts]]
    routers: Sequence[APIRouter] = ()
    # The hottest reads, each reading its own parameters: answered ahead of every other route.
    served_first: Sequence[Callable[[Request], Awaitable[Response]]] = ()
    checks: Mapping[str, ReadinessCheck] = field(default_factory=dict)
    # What `/readyz` reports without depending on it.
    reported: Mapping[str, ReadinessCheck] = field(default_factory=dict)
    # What an app adds beyond routes (the console's pages, middleware and static files).
    customise: Callable[[FastAPI], None] | None = None
    # The pool of a worker run without the web app (`run_until_stopped`).
    worker_pool_size: int | None = None


async def migrate(blueprint: Blueprint, settings: Settings) -> None:
    """The service's schema migrated: for the migrator's commands (a rebuild), not a service."""
    await upgrade_service(blueprint.migrations, schema=blueprint.name, url=settings.database_url)


async def wait_until_migrated(blueprint: Blueprint, settings: Settings) -> None:
    await migrate_module.wait_until_migrated(
        blueprint.migrations, schema=blueprint.name, url=settings.database_url
    )


async def start(
    blueprint: Blueprint,
    settings: Settings,
    *,
    clock: Clock,
    tasks: BackgroundTasks,
    pool_size: int | None = None,
) -> tuple[Started, Parts]:
    """Start the service's parts among `tasks`; the caller stops `tasks` and closes the parts."""
    sanwu_logging.configure(settings.log_level, json=settings.log_json)
    today = clock().astimezone(SHANGHAI).date()
    try:
        campaign = campaign_file.load(settings.campaign_file, today=today)
    except CampaignFileError as exc:
        log.error("campaign_invalid", service=blueprint.name, error=str(exc))
        raise
    await wait_until_migrated(blueprint, settings)
    db = Database.from_settings(settings, pool_size=pool_size)
    registry = UnitRegistry(db.engine)
    await registry.refresh()
    tasks.start("registry-refresh", registry.keep_fresh(settings.registry_refresh_seconds))
    keys = KeyCache(db, failures=FailedAuthentications(settings.auth_failure_limit))
    started = Started(
        settings=settings,
        clock=clock,
        campaign=CurrentCampaign(campaign, now=clock),
        db=db,
        registry=registry,
        keys=keys,
        tasks=tasks,
    )
    parts = await blueprint.assemble(started)
    parts.close.append(db.dispose)
    listener = ChangeListener(settings, {KEY_CHANNEL: keys, **parts.caches})
    tasks.start("change-listener", listener.run())
    if parts.relays or parts.consumers:
        await kafka.stop_if_refused(settings)
    for name, relay in parts.relays.items():
        tasks.start(name, relay.run())
    for name, loop in parts.loops.items():
        tasks.start(name, loop())
    for name, consumer in parts.consumers.items():
        consumer.start()
        tasks.attach(name, consumer.stop)
    for name, stop in parts.stops.items():
        tasks.attach(name, stop)
    log.info("service_started", service=blueprint.name, tasks=tasks.names)
    return started, parts


async def close(parts: Parts) -> None:
    for closing in parts.close:
        await closing()


def create_app(blueprint: Blueprint, settings: Settings, *, clock: Clock) -> FastAPI:
    """The service's web app: its parts start with the app's lifespan and stop with it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = BackgroundTasks()
        started, parts = await start(blueprint, settings, clock=clock, tasks=tasks)
        app.state.settings = settings
        app.state.db = started.db
        app.state.registry = started.registry
        app.state.keys = started.keys
        app.state.tasks = tasks
        for name, value in parts.state.items():
            setattr(app.state, name, value)
        async with serving(tasks, close=lambda: close(parts)):
            yield

    app = create_web_app(
        title=blueprint.title,
        description=blueprint.description,
        lifespan=lifespan,
        checks=dict(blueprint.checks),
        reported=dict(blueprint.reported),
        settings=settings,
    )
    if blueprint.customise is not None:
        blueprint.customise(app)
    for router in blueprint.routers:
        include_routes(app, router)
    if serves_asyncapi(blueprint.name):
        include_routes(app, asyncapi_router(settings))
    for endpoint in blueprint.served_first:
        serve_first(app, endpoint)
    return app


async def run_until_stopped(blueprint: Blueprint, settings: Settings, *, clock: Clock) -> None:
    """The service's parts without the web app, until SIGINT or SIGTERM."""
    tasks = BackgroundTasks()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stopped.set)
    _, parts = await start(
        blueprint, settings, clock=clock, tasks=tasks, pool_size=blueprint.worker_pool_size
    )
    try:
        await stopped.wait()
    finally:
        await tasks.stop()
        await close(parts)
