"""The whole path through the real services: desks post to intake, evaluation decides, the
applications service follows the statuses; the county applies, the city reviews, the province
awards; a late report (通报) puts a title at risk, its void clears that, and a revocation (摘牌)
leaves it revoked with the reason in the history."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from shared.access.models import Role
from shared.config import DEFAULT_CAMPAIGN_FILE
from tests.applications.conftest import CITY, PROVINCE
from tests.conftest import COUNTY, DEMO_UNITS
from tests.support.app import bearer
from tests.support.applications import act, create, decisions
from tests.support.events import visit, voided
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.stack import IsolatedStack
from tests.support.waiting import poll

PERIOD = "2018"
V1, V2, V3, V4, V5 = (f"3407221002{n:02d}" for n in range(1, 6))
KEYS = {
    "county_desk": (Role.desk, COUNTY),
    "county_bureau": (Role.bureau, COUNTY),
    "city_bureau": (Role.bureau, CITY),
    "province_bureau": (Role.bureau, PROVINCE),
}


@pytest.fixture(scope="module")
async def pipeline(stack: IsolatedStack) -> AsyncIterator[Pipeline]:
    async with running_pipeline(
        campaign_file=DEFAULT_CAMPAIGN_FILE, registry=[DEMO_UNITS], keys=KEYS, applications=True
    ) as running:
        yield running


def collective(code: str, *, occurred_at: str = "2018-06-03T09:30:00+08:00") -> dict[str, Any]:
    return visit(code, destination="county", headcount=5, occurred_at=occurred_at)


async def followed(pipeline: Pipeline, code: str, *, three_no: bool) -> None:
    """Until the applications service's view has the unit's status for the period."""

    async def seen() -> bool:
        async with pipeline.db.engine.connect() as connection:
            found = await connection.execute(
                sa.text(
                    "SELECT three_no FROM applications.unit_status "
                    "WHERE unit_code = :code AND period = :period"
                ),
                {"code": code, "period": PERIOD},
            )
            return found.scalar_one_or_none() is three_no

    await poll(seen, timeout=30, message=f"the applications service to see {code} {three_no}")


async def title_of(client: httpx.AsyncClient, key: str, code: str) -> dict[str, Any]:
    response = await client.get(
        "/v1/titles", params={"root": COUNTY, "period": PERIOD}, headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    return next(t for t in response.json()["items"] if t["unit"]["code"] == code)


async def title_becomes(
    client: httpx.AsyncClient, key: str, code: str, state: str
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        title = await title_of(client, key, code)
        return title if title["state"] == state else None

    found: dict[str, Any] = await poll(reached, timeout=30, message=f"{code} to be {state}")
    return found


async def test_a_county_applies_the_city_reviews_the_province_awards_and_titles_stay_honest(
    pipeline: Pipeline,
) -> None:
    client = pipeline.applications
    assert client is not None
    keys = pipeline.keys
    county, city, province = keys["county_bureau"], keys["city_bureau"], keys["province_bureau"]

    # A collective visit (5 people to the county) makes V1 not three-no for 2018.
    [visit_id] = await pipeline.post(keys["county_desk"], collective(V1))
    await pipeline.evaluated()
    await followed(pipeline, V1, three_no=False)

    refused = await create(client, county, period=PERIOD, codes=(V1, V2))
    assert refused.status_code == 409, refused.text
    [error] = refused.json()["errors"]
    assert (error["unit_code"], error["type"], error["counting_event_ids"]) == (
        V1,
        "not_eligible",
        [visit_id],
    )

    created = await create(client, county, period=PERIOD, codes=(V2, V3, V4, V5))
    assert created.status_code == 201, created.text
    submitted = (await act(client, county, application=created.json(), action="submit")).json()
    review = decisions("approve", V2, V3, V4)
    review["decisions"].append({"code": V5, "decision": "return", "reason": "整改未完成"})
    reviewed = await act(client, city, application=submitted, action="review", body=review)
    assert reviewed.status_code == 200, reviewed.text
    award = decisions("award", V2, V3)
    award["decisions"].append({"code": V4, "decision": "reject", "reason": "材料不实"})
    decided = await act(client, province, application=reviewed.json(), action="award", body=award)
    assert decided.status_code == 200, decided.text
    assert decided.json()["state"] == "decided"
    titles = await client.get(
        "/v1/titles", params={"root": COUNTY, "period": PERIOD}, headers=bearer(county)
    )
    assert {(t["unit"]["code"], t["state"]) for t in titles.json()["items"]} == {
        (V2, "held"),
        (V3, "held"),
    }

    # A late report dated inside the period puts V2's title at risk, naming the event.
    late = collective(V2, occurred_at="2018-11-20T10:00:00+08:00")
    await pipeline.post(keys["county_desk"], late)
    at_risk = await title_becomes(client, county, V2, "at_risk")
    assert at_risk["flag"]["event_ids"] == [late["event_id"]]
    # Its void clears the flag by itself.
    await pipeline.post(keys["county_desk"], voided(late))
    await title_becomes(client, county, V2, "held")

    # A second late report, then the province revokes the title.
    second = collective(V2, occurred_at="2018-12-05T10:00:00+08:00")
    await pipeline.post(keys["county_desk"], second)
    at_risk = await title_becomes(client, county, V2, "at_risk")
    revoked = await client.post(
        f"/v1/titles/{V2}/{PERIOD}/revoke",
        json={"reason": "12月通报越级上访，予以摘牌"},
        headers=bearer(province) | {"If-Match": str(at_risk["version"])},
    )
    assert revoked.status_code == 200, revoked.text
    assert (await title_of(client, county, V2))["state"] == "revoked"
    assert (await title_of(client, county, V3))["state"] == "held"

    history = await client.get(
        f"/v1/applications/{created.json()['application_id']}/history", headers=bearer(city)
    )
    v2_steps = [(s["action"], s["reason"]) for s in history.json()["items"] if s["unit_code"] == V2]
    assert v2_steps == [
        ("approved", None),
        ("awarded", None),
        ("flagged", None),
        ("flag_cleared", None),
        ("flagged", None),
        ("revoked", "12月通报越级上访，予以摘牌"),
    ]
