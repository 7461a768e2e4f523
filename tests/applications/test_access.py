"""Bureau keys: made on the command line, read reports in their scope like readers, and act on
applications only as their scope's level allows; every other combination is 403 and stores
nothing."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.reporting.config import ReportingSettings
from services.reporting.main import create_app as create_reporting_app
from shared.access.cache import KeyCache
from shared.access.models import Role
from shared.config import Settings
from shared.db import Database
from shared.ratelimit import FailedAuthentications
from tests.applications.conftest import CITY
from tests.conftest import COUNTY, TOWNSHIP, VILLAGE
from tests.support.app import bearer, serve
from tests.support.applications import act, create, decisions, stored

SANWU = str(Path(sys.executable).parent / "sanwu")
PERIOD = "a-scope"
V2 = "340722100202"
PROBLEM = "application/problem+json"


def sanwu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SANWU, *args], capture_output=True, text=True, timeout=150, check=False)


def test_the_command_line_creates_bureau_keys_for_counties_cities_and_provinces(
    settings: Settings,
) -> None:
    made = sanwu("keys", "create", "--role", "bureau", "--scope", COUNTY)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("sanwu_") and len(made.stdout.splitlines()) == 1

    async def principal() -> Any:
        db = Database.from_settings(settings, pool_size=1)
        try:
            return await KeyCache(db, failures=FailedAuthentications("")).authenticate(
                f"Bearer {key}"
            )
        finally:
            await db.dispose()

    import asyncio

    found = asyncio.run(principal())
    assert (found.role, found.scope_code) == (Role.bureau, COUNTY)
    listed = sanwu("keys", "list")
    assert f"{key.split('_')[1]}\tbureau\t{COUNTY}" in listed.stdout

    township = sanwu("keys", "create", "--role", "bureau", "--scope", TOWNSHIP)
    assert township.returncode == 2 and township.stdout == ""
    assert "county, city or province" in township.stderr


@pytest.fixture(scope="module")
async def reporting(settings: Settings, bureau_keys: dict[str, str]) -> Any:
    reporting_settings = ReportingSettings(reporting_run_consumer=False)
    async with serve(create_reporting_app(reporting_settings), "http://reporting") as client:
        yield client


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("county_bureau", 200),
        ("city_bureau", 200),
        ("province_bureau", 200),
        ("other_county_bureau", 403),
        ("other_city_bureau", 403),
        ("county_desk", 403),
    ],
)
async def test_a_bureau_reads_reports_in_its_scope_like_a_reader(
    reporting: httpx.AsyncClient, bureau_keys: dict[str, str], key: str, expected: int
) -> None:
    response = await reporting.get(
        f"/v1/units/{VILLAGE}/status", params={"period": "2018"}, headers=bearer(bureau_keys[key])
    )
    assert response.status_code == expected, response.text


async def submitted_application(
    client: httpx.AsyncClient, keys: dict[str, str], *codes: str
) -> Any:
    draft = (await create(client, keys["county_bureau"], period=PERIOD, codes=codes)).json()
    response = await act(client, keys["county_bureau"], application=draft, action="submit")
    assert response.status_code == 200, response.text
    return response.json()


ACTORS_BUT = {
    "create": ("city_bureau", "province_bureau", "township_bureau", "county_desk", "county_reader"),
    "submit": (
        "city_bureau",
        "province_bureau",
        "other_county_bureau",
        "township_bureau",
        "county_desk",
        "county_reader",
    ),
    "review": (
        "county_bureau",
        "province_bureau",
        "other_city_bureau",
        "township_bureau",
        "county_desk",
        "county_reader",
    ),
    "award": (
        "county_bureau",
        "city_bureau",
        "other_province_bureau",
        "other_city_bureau",
        "county_desk",
        "county_reader",
    ),
}
REVOKERS_BUT = (
    "county_bureau",
    "city_bureau",
    "other_province_bureau",
    "county_desk",
    "county_reader",
)


async def test_every_wrong_key_for_each_action_is_403_and_stores_nothing(
    applications: httpx.AsyncClient, bureau_keys: dict[str, str], db: Database
) -> None:
    keys = bureau_keys
    draft = (
        await create(applications, keys["county_bureau"], period=PERIOD, codes=(VILLAGE,))
    ).json()
    under_review = await submitted_application(applications, keys, V2)
    recommended = (
        await act(
            applications,
            keys["city_bureau"],
            application=under_review,
            action="review",
            body=decisions("approve", V2),
        )
    ).json()
    before = await stored(db, PERIOD)

    async def attempt(action: str, key: str) -> httpx.Response:
        if action == "create":
            return await create(applications, keys[key], period=PERIOD, codes=("340722100203",))
        if action == "submit":
            return await act(applications, keys[key], application=draft, action="submit")
        if action == "review":
            return await act(
                applications,
                keys[key],
                application=under_review,
                action="review",
                body=decisions("approve", V2),
            )
        return await act(
            applications,
            keys[key],
            application=recommended,
            action="award",
            body=decisions("award", V2),
        )

    refused = {}
    for action, wrong_keys in ACTORS_BUT.items():
        for key in wrong_keys:
            response = await attempt(action, key)
            refused[(action, key)] = response.status_code
            if response.status_code == 403:
                assert response.headers["content-type"] == PROBLEM
    assert {k: v for k, v in refused.items() if v != 403} == {}
    # Another county's bureau cannot apply in this county's name either.
    other = await create(
        applications,
        keys["other_county_bureau"],
        period=PERIOD,
        codes=("340722100203",),
        county_code=COUNTY,
    )
    assert other.status_code == 403
    assert await stored(db, PERIOD) == before


async def test_revoking_needs_the_province_bureau(
    applications: httpx.AsyncClient, bureau_keys: dict[str, str]
) -> None:
    """The title exists here, so a wrong key's 403 is about the key, not a missing title."""
    keys = bureau_keys
    under_review = await submitted_application(applications, keys, "340722100203")
    recommended = (
        await act(
            applications,
            keys["city_bureau"],
            application=under_review,
            action="review",
            body=decisions("approve", "340722100203"),
        )
    ).json()
    awarded = (
        await act(
            applications,
            keys["province_bureau"],
            application=recommended,
            action="award",
            body=decisions("award", "340722100203"),
        )
    ).json()
    for key in REVOKERS_BUT:
        response = await applications.post(
            f"/v1/titles/340722100203/{PERIOD}/revoke",
            json={"reason": "摘牌"},
            headers=bearer(keys[key]) | {"If-Match": str(awarded["version"])},
        )
        assert response.status_code == 403, (key, response.text)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("county_bureau", 200),
        ("city_bureau", 200),
        ("province_bureau", 200),
        ("county_reader", 200),
        ("other_city_bureau", 403),
        ("other_county_bureau", 403),
        ("county_desk", 403),
    ],
)
async def test_applications_are_read_in_scope(
    applications: httpx.AsyncClient, bureau_keys: dict[str, str], key: str, expected: int
) -> None:
    listed = await applications.get(
        "/v1/applications",
        params={"root": COUNTY, "period": PERIOD},
        headers=bearer(bureau_keys[key]),
    )
    assert listed.status_code == expected, listed.text
    if expected == 200:
        assert all(a["county_code"] == COUNTY for a in listed.json()["items"])


async def test_a_city_bureau_lists_what_its_counties_applied(
    applications: httpx.AsyncClient, bureau_keys: dict[str, str]
) -> None:
    draft = (
        await create(
            applications, bureau_keys["county_bureau"], period=PERIOD, codes=("340722101201",)
        )
    ).json()
    listed = await applications.get(
        "/v1/applications",
        params={"period": PERIOD, "state": "draft"},
        headers=bearer(bureau_keys["city_bureau"]),
    )
    assert draft["application_id"] in {a["application_id"] for a in listed.json()["items"]}
    assert {a["state"] for a in listed.json()["items"]} == {"draft"}
    elsewhere = await applications.get(
        "/v1/applications",
        params={"period": PERIOD},
        headers=bearer(bureau_keys["other_city_bureau"]),
    )
    assert elsewhere.status_code == 200 and elsewhere.json()["items"] == []
    assert CITY != "350100000000"
