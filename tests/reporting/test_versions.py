"""Each (unit, period, version) is applied once: a version at or below the stored one, whether
late, repeated or redelivered, changes nothing and makes no feed entry. Malformed messages go
to the dead-letter topic with their reason, and the consumer goes on."""

from typing import Any

from tests.conftest import COUNTY, SIBLING_VILLAGE, VILLAGE
from tests.support.dead_letters import dead_letters
from tests.support.reporting import Reporting, StatusPublisher, status, wait_committed


async def feed_for(reporting: Reporting, key: str, period: str) -> list[tuple[str, int]]:
    items: list[dict[str, Any]] = []
    since = None
    while True:
        params: dict[str, Any] = {"root": COUNTY, "limit": 1000} | (
            {"since": since} if since else {}
        )
        body = (await reporting.get("/v1/feed/status-changes", key, **params)).json()
        if not body["items"]:
            return [(i["unit_code"], i["version"]) for i in items if i["period"] == period]
        items += body["items"]
        since = body["next_cursor"]


async def test_late_and_repeated_versions_are_ignored(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    period = "t-versions"
    latest = status(VILLAGE, period, 3, counts={"skip_level": 1}, people={"skip_level": 2})
    sent = await publisher.publish(
        status(VILLAGE, period, 2),
        status(VILLAGE, period, 1, three_no=True),  # late
        status(VILLAGE, period, 2, three_no=True),  # same version, other content
        latest,
        status(SIBLING_VILLAGE, period, 5),
        status(SIBLING_VILLAGE, period, 4, three_no=True),  # late, and nothing after it
    )
    await wait_committed(reporting.settings, sent)
    redelivered = await publisher.publish(latest, status(SIBLING_VILLAGE, period, 5))
    await wait_committed(reporting.settings, redelivered)

    village = (
        await reporting.get(f"/v1/units/{VILLAGE}/status", keys["county_reader"], period=period)
    ).json()
    assert village["version"] == 3 and village["three_no"] is False
    assert village["counts"] == {
        "skip_level": 1,
        "non_reception_site": 0,
        "collective": 0,
        "incident": 0,
    }
    assert village["counting_event_ids"] == latest.counting_event_ids
    sibling = (
        await reporting.get(
            f"/v1/units/{SIBLING_VILLAGE}/status", keys["county_reader"], period=period
        )
    ).json()
    assert sibling["version"] == 5 and sibling["three_no"] is False
    feed = await feed_for(reporting, keys["county_reader"], period)
    assert [v for u, v in feed if u == VILLAGE] == [2, 3]
    assert [v for u, v in feed if u == SIBLING_VILLAGE] == [5]
    assert len(feed) == 3
    summary = (
        await reporting.get(
            "/v1/reports/summary", keys["county_reader"], root=COUNTY, period=period
        )
    ).json()
    assert summary["levels"]["village"]["three_no"] == 298
    assert summary["levels"]["village"]["batches"]["skip_level"] == 1
    assert summary["levels"]["village"]["batches"]["collective"] == 1


async def test_a_unit_that_never_changed_is_three_no_at_version_0(
    reporting: Reporting, keys: dict[str, str]
) -> None:
    response = await reporting.get(
        f"/v1/units/{VILLAGE}/status", keys["township_reader"], period="2018"
    )

    assert response.status_code == 200
    body = response.json()
    assert (
        body["unit"]
        == {
            "code": VILLAGE,
            "name": "李西畈村",  # its name in data/demo-units.csv
            "level": "village",
            "parent_code": COUNTY[:6] + "100000",
        }
    )
    assert body["three_no"] is True and body["version"] == 0 and body["changed_at"] is None
    assert body["counting_event_ids"] == [] and set(body["counts"].values()) == {0}


async def test_malformed_messages_are_dead_lettered_and_the_consumer_goes_on(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    period = "t-dlq"
    good = status(VILLAGE, period, 1)
    unknown_unit = status("340722999999", period, 1)
    mismatched = status(SIBLING_VILLAGE, period, 1)
    sent = await publisher.publish_raw(
        [
            (b"340722100201:t-dlq", b"not json at all"),
            (unknown_unit.key, unknown_unit.model_dump_json().encode()),
            (b"340722100201:t-dlq", mismatched.model_dump_json().encode()),
            (good.key, good.model_dump_json().replace('"version":1', '"version":"one"').encode()),
            (good.key, good.model_dump_json().encode()),
        ]
    )
    await wait_committed(reporting.settings, sent)

    response = await reporting.get(
        f"/v1/units/{VILLAGE}/status", keys["county_reader"], period=period
    )
    assert response.json()["version"] == 1
    # The letters reporting wrote for these messages (applications reads the topic too).
    letters = await dead_letters(reporting.settings, sent, by="reporting")
    assert None not in letters[:4] and letters[4] is None, letters
    reasons = [letter.reason for letter in letters[:4] if letter is not None]
    assert reasons[0].startswith("not a unit status")
    assert "not in the registry" in reasons[1]
    assert "is not unit_code:period" in reasons[2]
    assert reasons[3].startswith("not a unit status: version")
    assert letters[0] is not None and letters[0].value == b"not json at all"
