"""The reporting service (health only until its features land)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.reporting.config import ReportingSettings, get_settings
from shared import kafka
from shared import logging as sanwu_logging
from shared.db import Database
from shared.migrate import upgrade
from shared.web import create_app as create_service_app
from shared.web import database_ready

SHARED_MIGRATIONS = Path(__file__).parents[2] / "shared" / "migrations"


async def kafka_ready(app: FastAPI) -> bool:
    return await kafka.reachable(app.state.settings)


def create_app(settings: ReportingSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sanwu_logging.configure(settings.log_level, json=settings.log_json)
        await upgrade(SHARED_MIGRATIONS, schema="registry", url=settings.database_url)
        app.state.settings = settings
        app.state.db = Database.from_settings(settings)
        try:
            yield
        finally:
            await app.state.db.dispose()

    return create_service_app(
        title="sanwu reporting",
        description="The reporting service.",
        lifespan=lifespan,
        checks={"database": database_ready, "kafka": kafka_ready},
    )
