"""The applications service for the session, and the bureau keys it is acted on with.

Every test works in a campaign period of its own (one unit is in at most one live application
per period, and the session's tests share the database). The test campaign's application
window is the whole year, so the suite passes in any month; the window tests set their own."""

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy.dialects.postgresql import insert

from services.applications.config import ApplicationsSettings
from services.applications.main import create_app
from services.applications.models import unit_status
from shared.access import service as access_service
from shared.access.models import Role
from shared.config import DEFAULT_CAMPAIGN_FILE, Settings
from shared.db import Database
from tests.conftest import COUNTY, TOWNSHIP
from tests.support.app import serve

CITY = "340700000000"  # 铜陵市, the demo county's city
PROVINCE = "340000000000"  # 安徽省
OTHER_CITY = "350100000000"  # a city of the small second province
OTHER_PROVINCE = "350000000000"
OTHER_COUNTY = "350101000000"
APPLICATION_PERIODS = tuple(
    f"a-{name}"
    for name in (
        "workflow",
        "refusals",
        "scope",
        "flags",
        "titles",
        "feed",
        "window",
        "evidence",
        "stale",
        "materials",
        "records",
        "records-newer",
        "headers",
        "long-texts",
    )
)
WHOLE_YEAR = {"window": {"start_month_day": "01-01", "end_month_day": "12-31"}}


def campaign_with(
    directory: Path, *, periods: tuple[str, ...], applications: dict[str, Any]
) -> Path:
    campaign = yaml.safe_load(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"))
    campaign["periods"] += [
        {"id": period, "start": "2019-01-01", "end": "2019-12-31"} for period in periods
    ]
    campaign["applications"] = applications
    path = directory / "campaign.yaml"
    path.write_text(yaml.safe_dump(campaign, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def applications_campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return campaign_with(
        tmp_path_factory.mktemp("campaign"), periods=APPLICATION_PERIODS, applications=WHOLE_YEAR
    )


@pytest.fixture(scope="session")
def applications_settings(settings: Settings, applications_campaign: Path) -> ApplicationsSettings:
    """Statuses are written straight into the service's table by these tests: its consumer
    stays off."""
    return ApplicationsSettings(
        campaign_file=applications_campaign,
        registry_refresh_seconds=0.3,
        applications_run_consumer=False,
        applications_relay_idle_poll_seconds=0.2,
    )


@pytest.fixture(scope="session")
async def applications(
    applications_settings: ApplicationsSettings, bureau_keys: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(applications_settings), "http://applications") as client:
        yield client


@pytest.fixture(scope="session")
async def bureau_keys(db: Database, keys: dict[str, str]) -> dict[str, str]:
    """Bureau keys by name, with the session's desk, reader and admin keys."""
    specs = {
        "county_bureau": COUNTY,
        "city_bureau": CITY,
        "province_bureau": PROVINCE,
        "other_county_bureau": OTHER_COUNTY,
        "other_city_bureau": OTHER_CITY,
        "other_province_bureau": OTHER_PROVINCE,
        "township_bureau": TOWNSHIP,  # the command line refuses it; made here to test the API
    }
    created = dict(keys)
    async with db.engine.begin() as connection:
        for name, scope in specs.items():
            created[name] = await access_service.create(
                connection, role=Role.bureau, scope_code=scope
            )
    return created


StatusWriter = Callable[..., Any]


@pytest.fixture
def set_status(db: Database) -> StatusWriter:
    """Write a unit's status for a period as the status consumer would (newer version wins)."""

    async def write(
        unit_code: str,
        period: str,
        *,
        three_no: bool,
        event_ids: list[str] | None = None,
        version: int = 1,
        counts: dict[str, int] | None = None,
    ) -> None:
        row = {
            "unit_code": unit_code,
            "period": period,
            "three_no": three_no,
            "counting_event_ids": event_ids or [],
            "version": version,
            "changed_at": datetime.now().astimezone(),
            "counts": counts or {},
            "people": {},
        }
        statement = insert(unit_status).values(row)
        statement = statement.on_conflict_do_update(
            index_elements=["unit_code", "period"],
            set_={k: statement.excluded[k] for k in row if k not in ("unit_code", "period")},
        )
        async with db.engine.begin() as connection:
            await connection.execute(statement)

    return write


# The service with its status consumer running, for the dynamic-management tests.
from tests.support.dynamic import dynamic, dynamic_settings, status_publisher  # noqa: E402, F401
