"""The pull feed: every applied change once, in the order applied, across pages pulled while
changes keep arriving and across a restart of the reporting service."""

import asyncio
import random
from typing import Any

from tests.conftest import COUNTY, SIBLING_TOWNSHIP, SIBLING_VILLAGE, TOWNSHIP, VILLAGE
from tests.support.reporting import (
    Reporting,
    StatusPublisher,
    demo_villages,
    status,
    wait_committed,
)
from tests.support.waiting import wait_until

Change = tuple[str, str, int]  # unit, period, version


def change_of(item: dict[str, Any]) -> Change:
    return item["unit_code"], item["period"], item["version"]


async def pull(
    reporting: Reporting, key: str, *, root: str, since: str | None, limit: int
) -> tuple[list[Change], str]:
    params: dict[str, Any] = {"root": root, "limit": limit}
    if since is not None:
        params["since"] = since
    response = await reporting.get("/v1/feed/status-changes", key, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    return [change_of(item) for item in body["items"]], body["next_cursor"]


async def pull_all(
    reporting: Reporting, key: str, *, root: str, since: str | None = None
) -> tuple[list[Change], str]:
    changes: list[Change] = []
    while True:
        page, since = await pull(reporting, key, root=root, since=since, limit=1000)
        changes += page
        if not page:
            assert since is not None
            return changes, since


async def test_pages_pulled_while_changes_arrive_hold_each_change_once_in_order(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    period = "t-feed"
    units = demo_villages()[:40]
    versions = 8
    expected = {(unit, period, v) for unit in units for v in range(1, versions + 1)}
    start_changes, start = await pull_all(reporting, keys["county_reader"], root=COUNTY)

    async def produce(share: list[str]) -> None:
        rng = random.Random(share[0])
        for version in range(1, versions + 1):
            await publisher.publish(
                *[status(u, period, version, three_no=version % 2 == 0) for u in share]
            )
            await asyncio.sleep(rng.uniform(0, 0.03))

    # A second instance in the same consumer group: two consumers apply at the same time,
    # and the pulls alternate between the two APIs, as behind a load balancer.
    second = Reporting(reporting.settings)
    await second.start()
    instances = [reporting, second]

    async def both_consuming() -> bool:
        return all(instance.consumer.assignment for instance in instances)

    await wait_until(both_consuming, message="both instances to own partitions")
    producers = [asyncio.create_task(produce(units[i::4])) for i in range(4)]
    pulled: list[Change] = []
    cursor = start
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    pulled_while_producing = 0
    while not expected <= set(pulled):
        assert loop.time() < deadline, f"{len(expected - set(pulled))} changes never arrived"
        producing = not all(p.done() for p in producers)
        instances.reverse()
        page, cursor = await pull(
            instances[0], keys["county_reader"], root=COUNTY, since=cursor, limit=7
        )
        assert len(page) <= 7
        pulled += page
        pulled_while_producing += len(page) if producing else 0
        if not page:
            await asyncio.sleep(0.02)
    await asyncio.gather(*producers)
    await second.stop()

    assert pulled_while_producing > 0, "no page was pulled while changes were arriving"
    ours = [c for c in pulled if c[1] == period]
    assert len(ours) == len(set(ours)), "a change was repeated"
    assert set(ours) == expected
    for unit in units:
        assert [v for u, _, v in ours if u == unit] == list(range(1, versions + 1))
    # The pages, joined, are the feed itself: the same changes in the same order as one
    # pull from the beginning.
    everything, _ = await pull_all(reporting, keys["county_reader"], root=COUNTY)
    assert everything[: len(start_changes) + len(pulled)] == start_changes + pulled


async def test_the_feed_holds_only_changes_under_its_root(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    period = "t-roots"
    sent = await publisher.publish(
        status(VILLAGE, period, 1),
        status(TOWNSHIP, period, 1),
        status(SIBLING_VILLAGE, period, 1),
        status("350101100201", period, 1),
    )
    await wait_committed(reporting.settings, sent)

    def ours(changes: list[Change]) -> set[str]:
        return {unit for unit, p, _ in changes if p == period}

    township, _ = await pull_all(reporting, keys["township_reader"], root=TOWNSHIP)
    sibling, _ = await pull_all(reporting, keys["sibling_reader"], root=SIBLING_TOWNSHIP)
    village, _ = await pull_all(reporting, keys["township_reader"], root=VILLAGE)
    county, _ = await pull_all(reporting, keys["county_reader"], root=COUNTY)
    province, _ = await pull_all(reporting, keys["admin"], root="350000000000")
    assert ours(township) == {VILLAGE, TOWNSHIP}
    assert ours(sibling) == {SIBLING_VILLAGE}
    assert ours(village) == {VILLAGE}
    assert ours(county) == {VILLAGE, TOWNSHIP, SIBLING_VILLAGE}
    assert ours(province) == {"350101100201"}


async def test_a_pull_after_a_restart_continues_from_the_cursor(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    period = "t-restart"
    units = demo_villages()[100:106]
    sent = await publisher.publish(*[status(u, period, 1) for u in units])
    await wait_committed(reporting.settings, sent)
    before, cursor = await pull_all(reporting, keys["county_reader"], root=COUNTY)
    assert {(u, period, 1) for u in units} <= set(before)

    await reporting.stop()
    try:
        sent = await publisher.publish(
            *[status(u, period, 2, three_no=True) for u in units],
            status(units[0], period, 3),
        )
    finally:
        await reporting.start()
    await wait_committed(reporting.settings, sent)

    after, next_cursor = await pull_all(reporting, keys["county_reader"], root=COUNTY, since=cursor)
    ours = [c for c in after if c[1] == period]
    assert sorted(ours) == sorted([(u, period, 2) for u in units] + [(units[0], period, 3)])
    assert ours.index((units[0], period, 2)) < ours.index((units[0], period, 3))
    assert not set(after) & set(before)
    again, _ = await pull_all(reporting, keys["county_reader"], root=COUNTY, since=cursor)
    assert again == after
    nothing_new, _ = await pull(
        reporting, keys["county_reader"], root=COUNTY, since=next_cursor, limit=10
    )
    assert nothing_new == []
