"""A township reader reads its own township, with the effect of what its desk posted, and is
refused the county above it (403 problem+json that gives no figures away)."""

from typing import Any

import httpx

from tests.conftest import COUNTY, SIBLING_TOWNSHIP, TOWNSHIP, VILLAGE
from tests.e2e.conftest import at
from tests.support import events
from tests.support.pipeline import Pipeline

PERIOD = "t-e2e-scope"
READS: dict[str, tuple[str, dict[str, Any]]] = {
    "summary": ("/v1/reports/summary", {"period": PERIOD}),
    "eligible": ("/v1/reports/eligible", {"period": PERIOD, "level": "village"}),
    "feed": ("/v1/feed/status-changes", {}),
}


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail"} and body["status"] == 403
    assert VILLAGE not in response.text and "three_no" not in response.text


async def test_a_township_reader_gets_its_township_and_403_for_the_county(
    pipeline: Pipeline,
) -> None:
    event = events.visit(VILLAGE, destination="county", headcount=5, occurred_at=at(PERIOD))
    await pipeline.post(pipeline.keys["township_desk"], event)
    await pipeline.drained()
    key = pipeline.keys["township_reader"]

    summary = await pipeline.reporting.get("/v1/reports/summary", key, root=TOWNSHIP, period=PERIOD)
    assert summary.status_code == 200, summary.text
    assert summary.json()["levels"]["village"]["three_no"] == 14
    eligible = await pipeline.reporting.get(
        "/v1/reports/eligible", key, root=TOWNSHIP, period=PERIOD, level="village", limit=100
    )
    assert eligible.status_code == 200
    assert len(eligible.json()["items"]) == 14
    assert VILLAGE not in {item["code"] for item in eligible.json()["items"]}
    feed = await pipeline.reporting.get("/v1/feed/status-changes", key, root=TOWNSHIP, limit=1000)
    assert feed.status_code == 200
    assert (VILLAGE, PERIOD) in {(i["unit_code"], i["period"]) for i in feed.json()["items"]}
    village = await pipeline.reporting.get(f"/v1/units/{VILLAGE}/status", key, period=PERIOD)
    assert village.status_code == 200
    assert village.json()["counting_event_ids"] == [event["event_id"]]

    for url, params in READS.values():
        assert_refused(await pipeline.reporting.get(url, key, root=COUNTY, **params))
        assert_refused(await pipeline.reporting.get(url, key, root=SIBLING_TOWNSHIP, **params))
    assert_refused(await pipeline.reporting.get(f"/v1/units/{COUNTY}/status", key, period=PERIOD))
