"""A city without counties (东莞 and three others: docs/domain.md section 1): its townships sit
directly under the city. Desks post to its villages and townships; evaluation judges them as
townships and villages with no county above; reporting summarises the city, whose county
level is empty. Events of such a city are keyed (and locked) by the city, one stable unit."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shared.access.models import Role
from shared.config import DEFAULT_CAMPAIGN_FILE
from tests.conftest import COUNTY, DEMO_UNITS, VILLAGE
from tests.support import events
from tests.support.intake import published
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.stack import IsolatedStack

CITY = "441900000000"  # 东莞市
DONGCHENG = "441900003000"  # 东城街道, directly under the city
SHILONG = "441900101000"  # 石龙镇, directly under the city
DONGCHENG_VILLAGES = ["441900003001", "441900003002", "441900003003"]
SHILONG_VILLAGES = ["441900101001", "441900101002"]
REGISTRY = [
    ("440000000000", "广东省", "province", ""),
    (CITY, "东莞市", "city", "440000000000"),
    (DONGCHENG, "东城街道", "township", CITY),
    (SHILONG, "石龙镇", "township", CITY),
    *((code, f"东城社区{i}", "village", DONGCHENG) for i, code in enumerate(DONGCHENG_VILLAGES)),
    *((code, f"石龙社区{i}", "village", SHILONG) for i, code in enumerate(SHILONG_VILLAGES)),
]
KEYS = {
    "city_desk": (Role.desk, CITY),
    "township_desk": (Role.desk, SHILONG),
    "city_reader": (Role.reader, CITY),
    "county_desk": (Role.desk, COUNTY),
}
PERIOD = "2018"
WHEN = "2018-06-03T09:30:00+08:00"


@pytest.fixture(scope="module")
async def city_pipeline(
    stack: IsolatedStack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pipeline]:
    csv = tmp_path_factory.mktemp("city-registry") / "dongguan.csv"
    lines = ["code,name,level,parent_code", *(",".join(row) for row in REGISTRY)]
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    async with running_pipeline(
        campaign_file=DEFAULT_CAMPAIGN_FILE, registry=[DEMO_UNITS, Path(csv)], keys=KEYS
    ) as running:
        yield running


async def get(pipeline: Pipeline, url: str, **params: str) -> dict[str, Any]:
    response = await pipeline.reporting.get(url, pipeline.keys["city_reader"], **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_city_without_counties_is_evaluated_and_reported(city_pipeline: Pipeline) -> None:
    pipeline = city_pipeline
    collective = events.visit(
        DONGCHENG_VILLAGES[0], destination="city", headcount=6, occurred_at=WHEN
    )
    at_township = events.incident(SHILONG, occurred_at=WHEN)
    harmless = events.visit(SHILONG_VILLAGES[0], destination="township", occurred_at=WHEN)
    in_a_county = events.visit(VILLAGE, destination="city", headcount=6, occurred_at=WHEN)
    await pipeline.post(pipeline.keys["city_desk"], collective, harmless)
    await pipeline.post(pipeline.keys["township_desk"], at_township)
    single = await pipeline.intake.post(
        "/v1/events",
        json=events.visit(DONGCHENG, destination="province", occurred_at=WHEN),
        headers={"Authorization": f"Bearer {pipeline.keys['city_desk']}"},
    )
    assert single.status_code == 202, single.text
    await pipeline.post(pipeline.keys["county_desk"], in_a_county)
    await pipeline.drained()

    # Keyed by the city where there is no county, by the county elsewhere.
    keys = {m["value"]["event"]["event_id"]: m["key"] for m in await published(pipeline.settings)}
    for event in (collective, at_township, harmless):
        assert keys[event["event_id"]] == CITY.encode()
    assert keys[in_a_county["event_id"]] == COUNTY.encode()
    async with pipeline.db.engine.connect() as connection:
        keyed = await connection.execute(
            sa.text("SELECT DISTINCT county_code FROM intake.journal WHERE unit_code LIKE '4419%'")
        )
        assert [row[0] for row in keyed] == [CITY]

    # Judged as villages and townships with no county above.
    statuses = {
        code: (await get(pipeline, f"/v1/units/{code}/status", period=PERIOD))["three_no"]
        for code in [DONGCHENG, SHILONG, *DONGCHENG_VILLAGES, *SHILONG_VILLAGES]
    }
    assert statuses == {
        DONGCHENG: False,  # six to the city from one of its villages
        SHILONG: False,  # an incident at the township itself
        DONGCHENG_VILLAGES[0]: False,
        DONGCHENG_VILLAGES[1]: True,
        DONGCHENG_VILLAGES[2]: True,
        SHILONG_VILLAGES[0]: True,  # one person to the township counts for nothing
        SHILONG_VILLAGES[1]: True,
    }

    summary = await get(pipeline, "/v1/reports/summary", root=CITY, period=PERIOD)
    levels = summary["levels"]
    assert levels["county"]["total"] == 0 and levels["county"]["ratio"] is None
    assert (levels["township"]["total"], levels["township"]["three_no"]) == (2, 0)
    assert (levels["village"]["total"], levels["village"]["three_no"]) == (5, 4)
    assert levels["village"]["target_met"] is True  # 4 of 5 against 50 %
    assert levels["township"]["target_met"] is False  # 0 of 2 against 40 %
    children = {child["unit"]["code"]: child["levels"] for child in summary["children"]}
    assert set(children) == {DONGCHENG, SHILONG}
    assert children[DONGCHENG]["village"]["three_no"] == 2
    assert "county" not in children[DONGCHENG]

    township = await get(pipeline, "/v1/reports/summary", root=SHILONG, period=PERIOD)
    assert township["levels"]["township"]["three_no"] == 0
    assert township["levels"]["village"]["three_no"] == 2

    eligible = await get(
        pipeline, "/v1/reports/eligible", root=CITY, period=PERIOD, level="village"
    )
    assert [u["code"] for u in eligible["items"]] == [
        *DONGCHENG_VILLAGES[1:],
        *SHILONG_VILLAGES,
    ]
    feed = await get(pipeline, "/v1/feed/status-changes", root=CITY)
    changed = {(item["unit_code"], item["three_no"]) for item in feed["items"]}
    assert {(DONGCHENG, False), (SHILONG, False), (DONGCHENG_VILLAGES[0], False)} <= changed
