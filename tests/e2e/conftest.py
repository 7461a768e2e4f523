"""End-to-end: desks post to intake with their own keys, evaluation applies the rules, and the
tests read what reporting serves. The three services run in-process on a database and topics
of their own (`tests/e2e/pipeline.py` says why), all with one campaign file that adds a period
per test, each over a year no other test posts into, so that the tests cannot disturb each
other's figures."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from shared.access.models import Role
from shared.config import DEFAULT_CAMPAIGN_FILE
from tests.conftest import COUNTY, DEMO_UNITS, TOWNSHIP
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.stack import IsolatedStack

# period id: the calendar year it covers (before the plan's own 2018 period).
PERIODS = {
    "t-e2e-summary-reversed": 2012,
    "t-e2e-summary": 2013,
    "t-e2e-eligible": 2014,
    "t-e2e-feed": 2015,
    "t-e2e-scope": 2016,
}
KEYS = {
    "county_desk": (Role.desk, COUNTY),
    "township_desk": (Role.desk, TOWNSHIP),
    "county_reader": (Role.reader, COUNTY),
    "township_reader": (Role.reader, TOWNSHIP),
}


def at(period: str, day: str = "06-03T09:30:00+08:00") -> str:
    """A moment inside one of the tests' periods."""
    return f"{PERIODS[period]}-{day}"


@pytest.fixture(scope="package")
def campaign_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    campaign = yaml.safe_load(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"))
    campaign["periods"] += [
        {"id": period, "start": f"{year}-01-01", "end": f"{year}-12-31"}
        for period, year in PERIODS.items()
    ]
    path = tmp_path_factory.mktemp("e2e-campaign") / "campaign.yaml"
    path.write_text(yaml.safe_dump(campaign, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="package")
async def pipeline(stack: IsolatedStack, campaign_file: Path) -> AsyncIterator[Pipeline]:
    async with running_pipeline(
        campaign_file=campaign_file, registry=[DEMO_UNITS], keys=KEYS
    ) as running:
        yield running
