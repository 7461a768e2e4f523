"""The warnings feed (docs/domain.md section 8) as reporting serves it from the warning topic: every
applied version once, in the order applied, filtered by root and kind, across a restart."""

from typing import Any

import pytest
import sqlalchemy as sa

from shared import cursors
from shared.db import Database
from shared.early_warning import EarlyWarning, WarningKind
from shared.events import RatingSource
from tests.conftest import COUNTY, SIBLING_TOWNSHIP, SIBLING_VILLAGE, TOWNSHIP, VILLAGE
from tests.reporting.test_access import assert_problem
from tests.reporting.test_rebuild import sanwu
from tests.support.dead_letters import dead_letter_reasons
from tests.support.reporting import (
    Reporting,
    StatusPublisher,
    demo_villages,
    indicators,
    wait_committed,
    warning,
)

Item = tuple[str, int, bool]  # warning id, version, cleared


def item_of(body: dict[str, Any]) -> Item:
    return body["warning_id"], body["version"], body["cleared_at"] is not None


async def publish(
    reporting: Reporting, publisher: StatusPublisher, *warnings: EarlyWarning
) -> None:
    sent = await publisher.publish_warnings(*warnings)
    await wait_committed(reporting.settings, sent, group=reporting.settings.warning_consumer_group)


async def pull(
    reporting: Reporting, key: str, *, root: str, since: str | None = None, **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every item after `since`, page by page, and the cursor after the last."""
    items: list[dict[str, Any]] = []
    while True:
        query = {"root": root, "limit": 3, **params} | ({"since": since} if since else {})
        response = await reporting.get("/v1/warnings", key, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        since = body["next_cursor"]
        if not body["items"]:
            assert since is not None
            return items, since


def ours(items: list[dict[str, Any]], warnings: list[EarlyWarning]) -> list[Item]:
    ids = {str(w.warning_id) for w in warnings}
    return [item_of(i) for i in items if i["warning_id"] in ids]


async def test_the_feed_holds_each_raise_and_clear_in_the_order_applied(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    _, start = await pull(reporting, keys["county_reader"], root=COUNTY)
    first = warning(VILLAGE)
    second = warning(SIBLING_VILLAGE, kind=WarningKind.rising)
    cleared = first.model_copy(update={"version": 2, "cleared_at": first.raised_at})
    await publish(reporting, publisher, first)
    await publish(reporting, publisher, second)
    await publish(reporting, publisher, cleared)

    items, _ = await pull(reporting, keys["county_reader"], root=COUNTY, since=start)

    expected = [(str(first.warning_id), 1, False), (str(second.warning_id), 1, False)]
    expected.append((str(first.warning_id), 2, True))
    assert ours(items, [first, second]) == expected
    shown = next(i for i in items if i["warning_id"] == str(second.warning_id))
    assert shown["kind"] == "rising" and shown["unit_code"] == SIBLING_VILLAGE
    assert shown["event_ids"] == second.event_ids and shown["detail"] == second.detail
    assert set(shown) >= {"warning_id", "kind", "unit_code", "raised_at", "cleared_at"}


async def test_an_older_or_repeated_version_is_not_fed_again(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    _, start = await pull(reporting, keys["township_reader"], root=TOWNSHIP)
    raised = warning(demo_villages(TOWNSHIP)[1], version=2)
    await publish(reporting, publisher, raised, raised.model_copy(update={"version": 1}), raised)

    items, _ = await pull(reporting, keys["township_reader"], root=TOWNSHIP, since=start)

    assert ours(items, [raised]) == [(str(raised.warning_id), 2, False)]


async def test_kind_and_root_filter_the_feed(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    _, start = await pull(reporting, keys["county_reader"], root=COUNTY)
    near = warning(VILLAGE, kind=WarningKind.near_threshold)
    repeat = warning(VILLAGE, kind=WarningKind.repeat_petitioner)
    beside = warning(SIBLING_VILLAGE, kind=WarningKind.repeat_petitioner)
    await publish(reporting, publisher, near, repeat, beside)

    repeats, _ = await pull(
        reporting, keys["county_reader"], root=COUNTY, since=start, kind="repeat_petitioner"
    )
    township, _ = await pull(reporting, keys["township_reader"], root=TOWNSHIP)
    sibling, _ = await pull(reporting, keys["sibling_reader"], root=SIBLING_TOWNSHIP)

    assert {i for i, _, _ in ours(repeats, [near, repeat, beside])} == {
        str(repeat.warning_id),
        str(beside.warning_id),
    }
    assert all(i["kind"] == "repeat_petitioner" for i in repeats)
    assert {i for i, _, _ in ours(township, [near, repeat, beside])} == {
        str(near.warning_id),
        str(repeat.warning_id),
    }
    assert {i for i, _, _ in ours(sibling, [near, repeat, beside])} == {str(beside.warning_id)}


async def test_a_pull_after_a_restart_continues_from_the_cursor(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    units = demo_villages(TOWNSHIP)[2:6]
    before = [warning(u) for u in units]
    await publish(reporting, publisher, *before)
    seen, cursor = await pull(reporting, keys["county_reader"], root=COUNTY)
    assert len(ours(seen, before)) == len(before)

    await reporting.stop()
    try:
        after = [warning(u, kind=WarningKind.rising) for u in units]
        clears = [w.model_copy(update={"version": 2, "cleared_at": w.raised_at}) for w in before]
        sent = await publisher.publish_warnings(*after, *clears)
    finally:
        await reporting.start()
    await wait_committed(reporting.settings, sent, group=reporting.settings.warning_consumer_group)

    rest, next_cursor = await pull(reporting, keys["county_reader"], root=COUNTY, since=cursor)
    assert sorted(ours(rest, before + after)) == sorted(
        [(str(w.warning_id), 1, False) for w in after]
        + [(str(w.warning_id), 2, True) for w in before]
    )
    assert not {i["warning_id"] + str(i["version"]) for i in rest} & {
        i["warning_id"] + str(i["version"]) for i in seen
    }
    again, _ = await pull(reporting, keys["county_reader"], root=COUNTY, since=cursor)
    assert again == rest
    nothing, _ = await pull(reporting, keys["county_reader"], root=COUNTY, since=next_cursor)
    assert nothing == []


async def test_a_malformed_warning_is_dead_lettered_and_stores_nothing(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    _, start = await pull(reporting, keys["county_reader"], root=COUNTY)
    good = warning(VILLAGE)
    sent = await publisher.publish_raw(
        [
            (b"not-its-id", good.model_dump_json().encode()),
            (good.key, b'{"kind": "unheard_of"}'),
            (good.key, good.model_dump_json().replace(VILLAGE, "340722999999").encode()),
        ],
        topic=reporting.settings.warning_topic,
    )
    await wait_committed(reporting.settings, sent, group=reporting.settings.warning_consumer_group)

    items, _ = await pull(reporting, keys["county_reader"], root=COUNTY, since=start)
    assert ours(items, [good]) == []
    reasons = await dead_letter_reasons(reporting.settings, sent, by="reporting-warnings")
    assert None not in reasons, reasons


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "bogus"}, "since"),
        ({"since": cursors.encode("f1", "5")}, "since"),  # a status-feed cursor
        ({"since": cursors.encode("w1", "x")}, "since"),
        ({"kind": "earthquake"}, "kind"),
        ({"limit": 0}, "limit"),
        ({"root": "abc"}, "root"),
    ],
)
async def test_a_bad_cursor_kind_or_root_is_a_422(
    reporting: Reporting, keys: dict[str, str], params: dict[str, Any], field: str
) -> None:
    response = await reporting.get(
        "/v1/warnings", keys["county_reader"], **({"root": COUNTY} | params)
    )
    body = assert_problem(response, 422)
    assert field in {e["field"].split(".")[-1] for e in body["errors"]}


async def test_a_reader_outside_the_root_is_refused(
    reporting: Reporting, keys: dict[str, str]
) -> None:
    beside = await reporting.get("/v1/warnings", keys["township_reader"], root=SIBLING_TOWNSHIP)
    above = await reporting.get("/v1/warnings", keys["township_reader"], root=COUNTY)
    unknown = await reporting.get("/v1/warnings", keys["admin"], root="340722999999")

    assert "items" not in assert_problem(beside, 403)
    assert "items" not in assert_problem(above, 403)
    assert_problem(unknown, 404)


async def test_rebuild_restores_lost_indicators_and_warnings_and_feeds_missed_versions(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str], db: Database
) -> None:
    key = keys["county_reader"]
    village = demo_villages(TOWNSHIP)[10]
    period = "t-records-rebuild"
    sent = await publisher.publish_indicators(
        indicators(village, period, 1, ratings={RatingSource.petitioner: (4, 0, 1)})
    )
    await wait_committed(
        reporting.settings, sent, group=reporting.settings.indicator_consumer_group
    )
    raised = warning(village)
    cleared = raised.model_copy(update={"version": 2, "cleared_at": raised.raised_at})
    await publish(reporting, publisher, raised, cleared)
    async with db.engine.begin() as connection:
        for statement in (
            "DELETE FROM reporting.unit_indicators WHERE unit_code = :u AND period = :p",
            "DELETE FROM reporting.early_warnings WHERE warning_id = CAST(:w AS uuid)",
            "DELETE FROM reporting.warning_changes WHERE warning_id = CAST(:w AS uuid) "
            "AND version = 2",
        ):
            await connection.execute(
                sa.text(statement), {"u": village, "p": period, "w": str(raised.warning_id)}
            )
    _, cursor = await pull(reporting, key, root=COUNTY)
    lost = await reporting.get(f"/v1/units/{village}/indicators", key, period=period)
    assert lost.json()["version"] == 0

    code, stderr = await sanwu("reporting", "rebuild")

    assert code == 0, stderr
    assert "warning feed entries added" in stderr
    restored = (await reporting.get(f"/v1/units/{village}/indicators", key, period=period)).json()
    assert restored["version"] == 1 and restored["satisfaction"]["rate"] == 0.8
    added, cursor = await pull(reporting, key, root=COUNTY, since=cursor)
    assert ours(added, [raised]) == [(str(raised.warning_id), 2, True)]

    # Again: nothing is missing now; the running consumer goes on into the swapped-in tables.
    assert (await sanwu("reporting", "rebuild"))[0] == 0
    assert (await pull(reporting, key, root=COUNTY, since=cursor))[0] == []
    later = warning(village, kind=WarningKind.rising)
    await publish(reporting, publisher, later)
    assert ours((await pull(reporting, key, root=COUNTY, since=cursor))[0], [later]) == [
        (str(later.warning_id), 1, False)
    ]


async def test_the_summary_counts_open_warnings_under_its_root_as_they_are_raised_and_cleared(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    async def open_warnings(root: str) -> int:
        response = await reporting.get(
            "/v1/reports/summary", keys["county_reader"], root=root, period="2018"
        )
        assert response.status_code == 200, response.text
        count: int = response.json()["open_warnings"]
        return count

    before = {root: await open_warnings(root) for root in (COUNTY, TOWNSHIP, SIBLING_TOWNSHIP)}
    raised = warning(VILLAGE)
    await publish(reporting, publisher, raised)

    # The summaries were cached before the warning came: they are rendered again.
    assert await open_warnings(TOWNSHIP) == before[TOWNSHIP] + 1
    assert await open_warnings(COUNTY) == before[COUNTY] + 1
    assert await open_warnings(SIBLING_TOWNSHIP) == before[SIBLING_TOWNSHIP]

    await publish(
        reporting,
        publisher,
        raised.model_copy(update={"version": 2, "cleared_at": raised.raised_at}),
    )
    assert await open_warnings(TOWNSHIP) == before[TOWNSHIP]
    assert await open_warnings(COUNTY) == before[COUNTY]
