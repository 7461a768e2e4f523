"""One reporting service for the session (its consumer running), started and stopped by the
tests that need a restart. Every test works in a campaign period of its own, so tests that
share the database and the status topic cannot disturb each other's figures."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from services.reporting.config import ReportingSettings
from services.reporting.consumer import StatusConsumer
from services.reporting.main import create_app
from services.reporting.service import ReportingService
from shared.config import DEFAULT_CAMPAIGN_FILE, Settings
from tests.conftest import serve
from tests.reporting.support import StatusPublisher

TEST_PERIODS = (
    "t-summary",
    "t-instances",
    "t-city",
    "t-eligible",
    "t-feed",
    "t-roots",
    "t-restart",
    "t-versions",
    "t-dlq",
    "t-etag",
    "t-rebuild",
    "t-moves",
)


class Reporting:
    """The reporting app, run in-process; `restart` is a full stop and start of the service."""

    def __init__(self, settings: ReportingSettings) -> None:
        self.settings = settings
        self._stack: AsyncExitStack | None = None
        self._client: httpx.AsyncClient | None = None
        self._app: FastAPI | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        assert self._client is not None, "reporting is stopped"
        return self._client

    async def start(self) -> None:
        self._stack = AsyncExitStack()
        self._app = create_app(self.settings)
        self._client = await self._stack.enter_async_context(serve(self._app, "http://reporting"))

    async def stop(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = self._client = self._app = None

    @property
    def consumer(self) -> StatusConsumer:
        assert self._app is not None, "reporting is stopped"
        consumer: StatusConsumer = self._app.state.consumer
        return consumer

    @property
    def service(self) -> ReportingService:
        assert self._app is not None, "reporting is stopped"
        service: ReportingService = self._app.state.reporting
        return service

    async def get(self, url: str, key: str, **params: Any) -> httpx.Response:
        return await self.client.get(url, params=params, headers={"Authorization": f"Bearer {key}"})


@pytest.fixture(scope="session")
def campaign_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    campaign = yaml.safe_load(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"))
    campaign["periods"] += [
        {"id": period, "start": "2019-01-01", "end": "2019-12-31"} for period in TEST_PERIODS
    ]
    path = tmp_path_factory.mktemp("campaign") / "campaign.yaml"
    path.write_text(yaml.safe_dump(campaign, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def reporting_settings(settings: Settings, campaign_file: Path) -> ReportingSettings:
    return ReportingSettings(campaign_file=campaign_file, registry_refresh_seconds=0.3)


@pytest.fixture(scope="session")
async def reporting(
    reporting_settings: ReportingSettings, keys: dict[str, str]
) -> AsyncIterator[Reporting]:
    service = Reporting(reporting_settings)
    await service.start()
    yield service
    await service.stop()


@pytest.fixture(scope="session")
async def publisher(reporting_settings: ReportingSettings) -> AsyncIterator[StatusPublisher]:
    producer = StatusPublisher(reporting_settings)
    await producer.start()
    yield producer
    await producer.stop()
