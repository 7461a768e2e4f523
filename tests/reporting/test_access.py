"""Who may read what, and how every refusal looks: problem+json that names the bad field and
reveals nothing about units outside the key's scope. ETags make unchanged re-reads cheap."""

from typing import Any

import httpx
import pytest

from tests.conftest import COUNTY, SIBLING_TOWNSHIP, SIBLING_VILLAGE, TOWNSHIP, VILLAGE
from tests.support.reporting import (
    Reporting,
    StatusPublisher,
    status,
    wait_caught_up,
    wait_committed,
)

PROBLEM_FIELDS = {"type", "title", "status", "detail"}


def assert_problem(response: httpx.Response, status_code: int) -> dict[str, Any]:
    assert response.status_code == status_code, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status_code and set(body) >= PROBLEM_FIELDS
    return body


READS = {
    "summary": ("/v1/reports/summary", {"period": "2018"}, "root"),
    "eligible": ("/v1/reports/eligible", {"period": "2018", "level": "village"}, "root"),
    "not-eligible": ("/v1/reports/not-eligible", {"period": "2018", "level": "village"}, "root"),
    "feed": ("/v1/feed/status-changes", {}, "root"),
}


@pytest.mark.parametrize("read", sorted(READS))
async def test_a_township_reader_reads_its_township_and_nothing_above_or_beside_it(
    reporting: Reporting, keys: dict[str, str], read: str
) -> None:
    url, params, root = READS[read]

    own = await reporting.get(url, keys["township_reader"], **params, **{root: TOWNSHIP})
    county = await reporting.get(url, keys["township_reader"], **params, **{root: COUNTY})
    sibling = await reporting.get(
        url, keys["township_reader"], **params, **{root: SIBLING_TOWNSHIP}
    )

    assert own.status_code == 200
    assert set(assert_problem(county, 403)) == PROBLEM_FIELDS
    assert set(assert_problem(sibling, 403)) == PROBLEM_FIELDS
    assert "three_no" not in county.text and "items" not in county.text


async def test_unit_status_follows_the_same_scope(
    reporting: Reporting, keys: dict[str, str]
) -> None:
    async def read(code: str, key: str) -> httpx.Response:
        return await reporting.get(f"/v1/units/{code}/status", keys[key], period="2018")

    assert (await read(VILLAGE, "township_reader")).status_code == 200
    assert_problem(await read(SIBLING_VILLAGE, "township_reader"), 403)
    assert_problem(await read(COUNTY, "township_reader"), 403)
    assert (await read(SIBLING_VILLAGE, "admin")).status_code == 200


async def test_desk_keys_and_missing_keys_are_refused(
    reporting: Reporting, keys: dict[str, str]
) -> None:
    desk = await reporting.get(
        "/v1/reports/summary", keys["county_desk"], root=COUNTY, period="2018"
    )
    missing = await reporting.client.get(
        "/v1/reports/summary", params={"root": COUNTY, "period": "2018"}
    )
    missing_with_bad_root = await reporting.client.get(
        "/v1/reports/summary", params={"root": "abc", "period": "2018"}
    )

    assert_problem(desk, 403)
    assert_problem(missing, 401)
    assert_problem(missing_with_bad_root, 401)  # the key is checked before the parameters


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/v1/units/340722999999/status", {"period": "2018"}),
        (f"/v1/units/{VILLAGE}/status", {"period": "1999"}),
        ("/v1/reports/summary", {"root": "340722999999", "period": "2018"}),
        ("/v1/reports/summary", {"root": COUNTY, "period": "no-such-period"}),
        ("/v1/reports/eligible", {"root": COUNTY, "period": "1999", "level": "village"}),
        (
            "/v1/reports/not-eligible",
            {"root": "340722999999", "period": "2018", "level": "village"},
        ),
        ("/v1/feed/status-changes", {"root": "340722999999"}),
    ],
)
async def test_unknown_units_and_periods_are_404(
    reporting: Reporting, keys: dict[str, str], url: str, params: dict[str, str]
) -> None:
    assert_problem(await reporting.get(url, keys["admin"], **params), 404)


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/v1/units/34072210020/status", {"period": "2018"}, "code"),
        (f"/v1/units/{VILLAGE}/status", {}, "period"),
        (f"/v1/units/{COUNTY[:4]}00000000/status", {"period": "2018"}, "code"),  # a city
        ("/v1/reports/summary", {"root": "abc", "period": "2018"}, "root"),
        ("/v1/reports/summary", {"root": COUNTY}, "period"),
        ("/v1/reports/summary", {"root": COUNTY, "period": ""}, "period"),
        ("/v1/reports/summary", {"root": COUNTY, "period": "9" * 65}, "period"),
        ("/v1/reports/eligible", {"root": COUNTY, "period": "2018", "level": "city"}, "level"),
        (
            "/v1/reports/eligible",
            {"root": COUNTY, "period": "2018", "level": "village", "limit": 0},
            "limit",
        ),
        (
            "/v1/reports/eligible",
            {"root": COUNTY, "period": "2018", "level": "village", "format": "pdf"},
            "format",
        ),
        (
            "/v1/reports/eligible",
            {"root": COUNTY, "period": "2018", "level": "village", "cursor": "bogus"},
            "cursor",
        ),
        (
            "/v1/reports/not-eligible",
            {"root": COUNTY, "period": "2018", "level": "village", "cursor": "bogus"},
            "cursor",
        ),
        ("/v1/reports/not-eligible", {"root": COUNTY, "period": "2018", "level": "city"}, "level"),
        ("/v1/feed/status-changes", {"root": COUNTY, "since": "bogus"}, "since"),
        ("/v1/feed/status-changes", {"root": COUNTY, "limit": 1001}, "limit"),
    ],
)
async def test_bad_parameters_are_422_naming_the_field(
    reporting: Reporting, keys: dict[str, str], url: str, params: dict[str, Any], field: str
) -> None:
    body = assert_problem(await reporting.get(url, keys["admin"], **params), 422)
    assert field in {error["field"] for error in body["errors"]}


async def test_summary_status_and_eligible_page_answer_304_until_they_change(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    period = "t-etag"
    eligible = {"root": TOWNSHIP, "period": period, "level": "village", "limit": 1000}
    reads = [
        ("/v1/reports/summary", {"root": TOWNSHIP, "period": period}),
        (f"/v1/units/{VILLAGE}/status", {"period": period}),
        ("/v1/reports/eligible", eligible),
        ("/v1/reports/not-eligible", eligible),
    ]
    key = keys["township_reader"]
    # A summary counts the open warnings under its root in every period: what earlier tests
    # published must be in before the first reads, or the second may rightly differ.
    await wait_caught_up(reporting.settings)
    first = [await reporting.get(url, key, **params) for url, params in reads]
    etags = [r.headers["etag"] for r in first]

    for (url, params), etag in zip(reads, etags, strict=True):
        again = await reporting.client.get(
            url, params=params, headers={"Authorization": f"Bearer {key}", "If-None-Match": etag}
        )
        assert again.status_code == 304, (url, etag, again.headers["etag"], again.text)
        assert again.content == b"" and again.headers["etag"] == etag

    sent = await publisher.publish(status(VILLAGE, period, 1))
    await wait_committed(reporting.settings, sent)

    for (url, params), etag in zip(reads, etags, strict=True):
        changed = await reporting.client.get(
            url, params=params, headers={"Authorization": f"Bearer {key}", "If-None-Match": etag}
        )
        assert changed.status_code == 200 and changed.headers["etag"] != etag
    listed = (await reporting.get("/v1/reports/eligible", key, **eligible)).json()["items"]
    assert VILLAGE in {i["code"] for i in first[2].json()["items"]}
    assert VILLAGE not in {i["code"] for i in listed}


async def test_the_openapi_schema_documents_the_reporting_responses(reporting: Reporting) -> None:
    schema = (await reporting.client.get("/openapi.json")).json()
    summary = schema["paths"]["/v1/reports/summary"]["get"]["responses"]
    assert summary["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SummaryOut")
    assert {"304", "403", "404", "422"} <= set(summary)
    eligible = schema["paths"]["/v1/reports/eligible"]["get"]["responses"]
    assert {"application/json", "text/csv"} <= set(eligible["200"]["content"])
    assert "304" in eligible
    feed = schema["paths"]["/v1/feed/status-changes"]["get"]["responses"]["200"]
    assert feed["content"]["application/json"]["schema"]["$ref"].endswith("/FeedPageOut")
