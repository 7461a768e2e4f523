"""The not-eligible list after events posted through intake: each unit that is not three-no,
with the batches and people per criterion and the counting events worked out by hand from the
events posted (the rule table of campaign/zongyang-2018.yaml), page by page in unit-code
order; the same units as the second sheet of the xlsx file; refused outside the key's
scope."""

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from openpyxl import load_workbook

from shared.access.models import Role
from shared.config import DEFAULT_CAMPAIGN_FILE
from tests.conftest import COUNTY, DEMO_UNITS, SIBLING_TOWNSHIP, TOWNSHIP
from tests.support import events
from tests.support.pipeline import KeySpecs, Pipeline, running_pipeline
from tests.support.reporting import demo_townships, demo_units, demo_villages
from tests.support.stack import IsolatedStack

PERIOD = "t-not-eligible"
WHEN = "2011-06-03T09:30:00+08:00"
URL = "/v1/reports/not-eligible"
KEYS: KeySpecs = {
    "county_desk": (Role.desk, COUNTY),
    "county_reader": (Role.reader, COUNTY),
    "township_reader": (Role.reader, TOWNSHIP),
}
CRITERIA = ("skip_level", "non_reception_site", "collective", "incident")


@pytest.fixture(scope="module")
def campaign_with_period(tmp_path_factory: pytest.TempPathFactory) -> Path:
    campaign = yaml.safe_load(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"))
    campaign["periods"].append({"id": PERIOD, "start": "2011-01-01", "end": "2011-12-31"})
    path = tmp_path_factory.mktemp("not-eligible-campaign") / "campaign.yaml"
    path.write_text(yaml.safe_dump(campaign, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
async def pipeline(stack: IsolatedStack, campaign_with_period: Path) -> AsyncIterator[Pipeline]:
    async with running_pipeline(
        campaign_file=campaign_with_period, registry=[DEMO_UNITS], keys=KEYS
    ) as running:
        yield running


def figures(**values: int) -> dict[str, int]:
    return {criterion: values.get(criterion, 0) for criterion in CRITERIA}


def expected_item(
    code: str, *, counts: dict[str, int], people: dict[str, int], ids: list[str]
) -> dict[str, Any]:
    """The unit as the demo registry file lists it, with hand-worked figures."""
    units = {unit["code"]: unit for unit in demo_units()}
    unit = units[code]
    parent = units.get(unit["parent_code"])
    return {
        "code": code,
        "name": unit["name"],
        "level": unit["level"],
        "parent_code": unit["parent_code"] or None,
        "parent_name": parent["name"] if parent else None,
        "counts": figures(**counts),
        "people": figures(**people),
        "counting_event_ids": sorted(ids),
    }


def comparable(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item | {"counting_event_ids": sorted(item["counting_event_ids"])} for item in items]


async def pages(pipeline: Pipeline, level: str, *, limit: int) -> list[list[dict[str, Any]]]:
    found, cursor = [], None
    while True:
        params: dict[str, Any] = {"root": COUNTY, "period": PERIOD, "level": level, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await pipeline.reporting.get(URL, pipeline.keys["county_reader"], **params)
        assert response.status_code == 200, response.text
        found.append(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return found


@pytest.fixture(scope="module")
async def expected(pipeline: Pipeline) -> dict[str, list[dict[str, Any]]]:
    """Posts the events; returns the not-eligible items expected per level, in code order."""
    townships = demo_townships()
    skipping, provincial = demo_villages(townships[1])[:2]
    incident_village = demo_villages(townships[2])[0]
    others = [v for v in demo_villages() if v not in (skipping, provincial, incident_village)]
    # Collective visits of 5 to 7 people to the county: they mark the village only.
    collective = {
        v: events.visit(v, destination="county", headcount=5 + i % 3, occurred_at=WHEN)
        for i, v in enumerate(others[::11])
    }
    voided = list(collective)[4]
    four = events.visit(others[1], destination="county", headcount=4, occurred_at=WHEN)
    # To the city, skipping the township: the village's skip_level only.
    skip = events.visit(
        skipping, destination="city", headcount=2, skip_level=True, occurred_at=WHEN
    )
    # At a site that is not a reception site: the village, its township and the county.
    site = events.visit(
        skipping, destination="county", headcount=3, non_reception_site=True, occurred_at=WHEN
    )
    # Seven people to the province, skipping levels: skip_level and collective for the village
    # and its township; the county counts neither (national only, more than 50).
    province = events.visit(
        provincial, destination="province", headcount=7, skip_level=True, occurred_at=WHEN
    )
    incident = events.incident(incident_village, occurred_at=WHEN)
    desk = pipeline.keys["county_desk"]
    await pipeline.post(desk, *collective.values(), four, skip, site, province, incident)
    await pipeline.post(desk, events.voided(collective[voided]))
    await pipeline.drained()

    villages = [
        expected_item(
            v,
            counts={"collective": 1},
            people={"collective": e["headcount"]},
            ids=[e["event_id"]],
        )
        for v, e in collective.items()
        if v != voided
    ]
    villages += [
        expected_item(
            skipping,
            counts={"skip_level": 1, "non_reception_site": 1},
            people={"skip_level": 2, "non_reception_site": 3},
            ids=[skip["event_id"], site["event_id"]],
        ),
        expected_item(
            provincial,
            counts={"skip_level": 1, "collective": 1},
            people={"skip_level": 7, "collective": 7},
            ids=[province["event_id"]],
        ),
        expected_item(
            incident_village, counts={"incident": 1}, people={}, ids=[incident["event_id"]]
        ),
    ]
    return {
        "village": sorted(villages, key=lambda item: item["code"]),
        "township": [
            expected_item(
                townships[1],
                counts={"skip_level": 1, "non_reception_site": 1, "collective": 1},
                people={"skip_level": 7, "non_reception_site": 3, "collective": 7},
                ids=[site["event_id"], province["event_id"]],
            ),
            expected_item(
                townships[2], counts={"incident": 1}, people={}, ids=[incident["event_id"]]
            ),
        ],
        "county": [
            expected_item(
                COUNTY,
                counts={"non_reception_site": 1, "incident": 1},
                people={"non_reception_site": 3},
                ids=[site["event_id"], incident["event_id"]],
            )
        ],
    }


async def test_each_level_lists_the_units_with_their_counts_and_events(
    pipeline: Pipeline, expected: dict[str, list[dict[str, Any]]]
) -> None:
    for level, items in expected.items():
        listed = [item for page in await pages(pipeline, level, limit=1000) for item in page]
        assert comparable(listed) == items, level


async def test_pages_follow_the_unit_codes_and_poll_with_an_etag(
    pipeline: Pipeline, expected: dict[str, list[dict[str, Any]]]
) -> None:
    found = await pages(pipeline, "village", limit=4)
    assert len(found) == -(-len(expected["village"]) // 4) > 2
    assert all(len(page) == 4 for page in found[:-1]) and 0 < len(found[-1]) <= 4
    assert comparable([item for page in found for item in page]) == expected["village"]

    key = pipeline.keys["county_reader"]
    params: dict[str, Any] = {"root": COUNTY, "period": PERIOD, "level": "village", "limit": 4}
    first = await pipeline.reporting.get(URL, key, **params)
    assert first.status_code == 200 and first.headers["etag"]
    again = await pipeline.reporting.client.get(
        URL,
        params=params,
        headers={"Authorization": f"Bearer {key}", "If-None-Match": first.headers["etag"]},
    )
    assert again.status_code == 304 and again.content == b""

    eligible = await pipeline.reporting.get("/v1/reports/eligible", key, **params)
    assert eligible.status_code == 200
    for cursor in ("not-a-cursor", eligible.json()["next_cursor"]):
        refused = await pipeline.reporting.get(URL, key, **params, cursor=cursor)
        assert refused.status_code == 422, refused.text


async def test_the_units_are_those_of_the_xlsx_sheet_with_the_same_figures(
    pipeline: Pipeline, expected: dict[str, list[dict[str, Any]]]
) -> None:
    response = await pipeline.reporting.get(
        "/v1/reports/eligible",
        pipeline.keys["county_reader"],
        root=COUNTY,
        period=PERIOD,
        level="village",
        format="xlsx",
    )
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).worksheets[1]
    rows = [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    start = next(i for i, row in enumerate(rows) if row and row[0] == "单位代码")
    table = [row for row in rows[start + 1 :] if any(row)]
    # 单位代码, 单位名称, 上级单位名称, then batches and people of the first three criteria and
    # the incidents' batches.
    assert [
        [
            item["code"],
            item["name"],
            item["parent_name"],
            *(str(item[kind][c]) for c in CRITERIA[:3] for kind in ("counts", "people")),
            str(item["counts"]["incident"]),
        ]
        for item in expected["village"]
    ] == [row[:10] for row in table]


async def test_a_key_is_refused_roots_outside_its_scope(
    pipeline: Pipeline, expected: dict[str, list[dict[str, Any]]]
) -> None:
    key = pipeline.keys["township_reader"]
    params = {"period": PERIOD, "level": "village"}
    for root in (COUNTY, SIBLING_TOWNSHIP):
        response = await pipeline.reporting.get(URL, key, root=root, **params)
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "counting_event_ids" not in response.text
    own = await pipeline.reporting.get(URL, key, root=TOWNSHIP, limit=1000, **params)
    assert own.status_code == 200
    assert comparable(own.json()["items"]) == [
        item for item in expected["village"] if item["parent_code"] == TOWNSHIP
    ]
    unknown = await pipeline.reporting.get(URL, key, root=TOWNSHIP, period="1999", level="village")
    assert unknown.status_code == 404
