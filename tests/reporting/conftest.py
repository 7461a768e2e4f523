"""One reporting service for the session (its consumer running), started and stopped by the
tests that need a restart. Every test works in a campaign period of its own, so tests that
share the database and the status topic cannot disturb each other's figures."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from services.reporting.config import ReportingSettings
from shared.config import DEFAULT_CAMPAIGN_FILE, Settings
from tests.support.reporting import Reporting, StatusPublisher

TEST_PERIODS = (
    "t-summary",
    "t-instances",
    "t-city",
    "t-nation",
    "t-eligible",
    "t-feed",
    "t-roots",
    "t-restart",
    "t-versions",
    "t-dlq",
    "t-etag",
    "t-rebuild",
    "t-moves",
    "t-records",
    "t-records-rebuild",
    "t-status-cache",
)
PLAN_PERIOD = "t-plan-2018"


@pytest.fixture(scope="session")
def campaign_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    campaign = yaml.safe_load(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"))
    campaign["periods"] += [
        {"id": period, "start": "2019-01-01", "end": "2019-12-31"} for period in TEST_PERIODS
    ]
    # The plan's own dates, in a period no evaluation publishes for (it knows only the campaign
    # file's), so a test's messages are the only ones.
    campaign["periods"].append({"id": PLAN_PERIOD, "start": "2018-04-30", "end": "2018-12-31"})
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
