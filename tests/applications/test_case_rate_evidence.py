"""A submission keeps each unit's case rates of the period beside its cadence and satisfaction:
the applications service asks the cases service, over HTTP and with the submitting bureau's own
key, for the rates of the unit's subtree, and the materials show them. A cases service that
does not answer refuses the submission (503) with nothing stored.

The county 县0102 of the generated province, which no other test gives cases. Its village V has
three cases of 2026, judged on 2026-12-07 (counted by hand, as cases 1, 4 and 11 of
tests/cases/test_case_rates.py):

 #  received  routed  accepted      replied  rated       counts as
 1  03-02     03-05   03-10         04-20    satisfied   acceptance met, reply met, rated
 2  03-02     03-03   03-25 (late)  04-01    -           acceptance late, reply met, lapsed
 3  03-15: the matter of 1 again                         repeat
"""

import io
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
import yaml

from services.applications.config import ApplicationsSettings
from services.applications.main import create_app as create_applications_app
from services.cases.main import create_app as create_cases_app
from shared.access.models import Role
from shared.campaign import SHANGHAI
from shared.config import Settings
from shared.db import Database
from tests.applications.conftest import StatusWriter, campaign_with
from tests.support.app import bearer, serve, served_over_http
from tests.support.applications import act, create
from tests.support.cases import MovableClock, cases_settings, county_with_civil_affairs
from tests.support.processes import free_port

COUNTY = "350102000000"
TOWNSHIP = "350102100000"
VILLAGE = "350102100201"
OTHER_TOWNSHIP = "350102101000"  # applied for while no cases service answers
PERIOD = "a-case-rates"
TODAY = datetime.combine(date(2026, 12, 7), time(10), tzinfo=SHANGHAI)
# By hand from the table above: (numerator, denominator, not yet due).
EXPECTED = {
    "timely_acceptance": (1, 2, 0),
    "on_time_reply": (2, 2, 0),
    "rating_participation": (1, 2, 0),
    "satisfaction": (1, 1, 0),
    "repeat": (1, 3, 0),
}


def on(month: int, day: int) -> str:
    return datetime.combine(date(2026, month, day), time(9), tzinfo=SHANGHAI).isoformat()


@pytest.fixture(scope="module")
def campaign_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test campaign with one period more, the year of the cases."""
    path = campaign_with(
        tmp_path_factory.mktemp("campaign"),
        periods=(PERIOD,),
        applications={"window": {"start_month_day": "01-01", "end_month_day": "12-31"}},
    )
    campaign = yaml.safe_load(path.read_text(encoding="utf-8"))
    for period in campaign["periods"]:
        if period["id"] == PERIOD:
            period |= {"start": "2026-01-01", "end": "2026-12-31"}
    path.write_text(yaml.safe_dump(campaign, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
async def county_keys(db: Database, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return await county_with_civil_affairs(
        db,
        tmp_path_factory.mktemp("bodies"),
        county=COUNTY,
        name="县0102民政局",
        reader=Role.bureau,
    )


@pytest.fixture(scope="module")
async def cases_url(settings: Settings, campaign_file: Path) -> AsyncIterator[str]:
    own = cases_settings(settings, workers=False).model_copy(
        update={"campaign_file": campaign_file}
    )
    async with served_over_http(create_cases_app(own, clock=MovableClock(TODAY))) as url:
        yield url


def applications_app_with(
    applications_settings: ApplicationsSettings, *, campaign_file: Path, cases_url: str
) -> Any:
    own = applications_settings.model_copy(
        update={"campaign_file": campaign_file, "cases_url": cases_url}
    )
    return create_applications_app(own)


class Desk:
    """The county's desk and its 民政 body, acting on the cases service."""

    def __init__(self, client: httpx.AsyncClient, keys: dict[str, str]) -> None:
        self.client = client
        self.keys = keys

    async def register(self, received: str, matter: str) -> dict[str, Any]:
        body = {
            "case_id": str(uuid.uuid4()),
            "unit_code": VILLAGE,
            "received_at": received,
            "channel": "visit",
            "category": "社会保障",
            "petitioner_ref": matter,
            "summary": "低保待遇",
        }
        response = await self.client.post("/v1/cases", json=body, headers=bearer(self.keys["desk"]))
        assert response.status_code == 201, response.text
        registered: dict[str, Any] = response.json()
        return registered

    async def step(self, case: dict[str, Any], key: str, path: str, **body: Any) -> dict[str, Any]:
        response = await self.client.post(
            f"/v1/cases/{case['case_id']}/{path}",
            json=body,
            headers=bearer(self.keys[key]) | {"If-Match": f'"{case["version"]}"'},
        )
        assert response.status_code == 200, response.text
        stepped: dict[str, Any] = response.json()
        return stepped

    async def handled(self, matter: str, *dates: str, rating: str | None = None) -> None:
        received, routed, accepted, replied = dates[:4]
        case = await self.register(received, matter)
        to = {"unit_code": COUNTY, "body": "民政"}
        case = await self.step(case, "desk", "route", to=to, at=routed)
        case = await self.step(
            case, "body", "accept", reason="受理", notified_at=accepted, at=accepted
        )
        case = await self.step(case, "body", "reply", outcome="support", text="已办理", at=replied)
        if rating:
            await self.step(case, "desk", "rate", rating=rating, at=dates[4])


@pytest.fixture(scope="module")
async def village_cases(cases_url: str, county_keys: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=cases_url, timeout=30) as client:
        desk = Desk(client, county_keys)
        first = uuid.uuid4().hex
        await desk.handled(
            first, on(3, 2), on(3, 5), on(3, 10), on(4, 20), on(4, 25), rating="satisfied"
        )
        await desk.handled(uuid.uuid4().hex, on(3, 2), on(3, 3), on(3, 25), on(4, 1))
        await desk.register(on(3, 15), first)  # a repeat of the first


async def submitted(
    client: httpx.AsyncClient, key: str, set_status: StatusWriter, *codes: str
) -> httpx.Response:
    for code in codes:
        await set_status(code, PERIOD, three_no=True)
    draft = await create(client, key, period=PERIOD, codes=codes)
    assert draft.status_code == 201, draft.text
    return await act(client, key, application=draft.json(), action="submit")


async def test_the_evidence_keeps_each_units_case_rates_and_the_materials_show_them(
    applications_settings: ApplicationsSettings,
    campaign_file: Path,
    cases_url: str,
    village_cases: None,
    county_keys: dict[str, str],
    set_status: StatusWriter,
) -> None:
    key = county_keys["bureau"]
    app = applications_app_with(
        applications_settings, campaign_file=campaign_file, cases_url=cases_url
    )
    async with serve(app, "http://applications") as applications:
        response = await submitted(applications, key, set_status, TOWNSHIP, VILLAGE)
        assert response.status_code == 200, response.text
        application = response.json()
        materials = await applications.get(
            f"/v1/applications/{application['application_id']}/materials",
            params={"format": "xlsx"},
            headers=bearer(key),
        )

    evidence = {u["code"]: u["evidence"] for u in application["units"]}
    for code in (TOWNSHIP, VILLAGE):  # a township's subtree holds its village's cases
        rates = evidence[code]["case_rates"]
        found = {n: (r["numerator"], r["denominator"], r["not_yet_due"]) for n, r in rates.items()}
        assert found == EXPECTED, code
    assert evidence[VILLAGE]["case_rates"]["repeat"]["rate"] == pytest.approx(1 / 3)

    assert materials.status_code == 200, materials.text
    sheet = openpyxl.load_workbook(io.BytesIO(materials.content))["申报单位"]
    heading = next(sheet.iter_rows(max_row=1, values_only=True))
    rows = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert rows[VILLAGE][heading.index("信访事项办理率")] == (
        "及时受理率1/2（50.0%）；按期办结率2/2（100.0%）；参评率1/2（50.0%）；"
        "满意率1/1（100.0%）；重复信访率1/3（33.3%）"
    )


async def test_a_cases_service_that_does_not_answer_refuses_the_submission_and_stores_nothing(
    applications_settings: ApplicationsSettings,
    campaign_file: Path,
    county_keys: dict[str, str],
    set_status: StatusWriter,
) -> None:
    key = county_keys["bureau"]
    nobody = f"http://127.0.0.1:{free_port()}"
    app = applications_app_with(
        applications_settings, campaign_file=campaign_file, cases_url=nobody
    )
    async with serve(app, "http://applications") as applications:
        response = await submitted(applications, key, set_status, OTHER_TOWNSHIP)
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "cases service" in response.json()["detail"]
        draft_id = response.url.path.split("/")[3]
        kept = await applications.get(f"/v1/applications/{draft_id}", headers=bearer(key))

    assert kept.json()["state"] == "draft"
    assert all(u["evidence"] is None for u in kept.json()["units"])
