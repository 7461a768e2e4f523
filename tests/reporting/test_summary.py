"""Summaries against the plan's targets (county itself, ≥40% of townships, ≥50% of villages),
checked against figures worked out by hand for 枞阳县 (20 townships of 15 villages)."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from tests.conftest import COUNTY, SMALL_PROVINCE
from tests.support.reporting import (
    Reporting,
    StatusPublisher,
    demo_townships,
    demo_villages,
    status,
    wait_committed,
)
from tests.support.waiting import wait_until

PERIOD = "t-summary"


def figures(total: int, three_no: int, target: float, met: bool, **extra: Any) -> dict[str, Any]:
    return {
        "total": total,
        "three_no": three_no,
        "ratio": three_no / total,
        "target": target,
        "target_met": met,
    } | extra


def counts(**values: int) -> dict[str, int]:
    return {"skip_level": 0, "non_reception_site": 0, "collective": 0, "incident": 0} | values


WORK_RECORD_FIGURES = ("cadence_kept", "ratings", "satisfaction_rate")  # test_indicators.py


def without_counts(level_figures: dict[str, Any]) -> dict[str, Any]:
    left_out = ("batches", "people", *WORK_RECORD_FIGURES)
    return {k: v for k, v in level_figures.items() if k not in left_out}


async def test_county_summary_meets_targets_at_the_boundary_and_misses_them_past_it(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    townships = demo_townships()
    assert len(townships) == 20 and len(demo_villages()) == 300
    # Phase 1: all 15 villages of the first 10 townships (150 of 300), and the first 12
    # townships (8 of 20 left clean) are not three-no; the county is.
    dirty_villages = [v for t in townships[:10] for v in demo_villages(t)]
    sent = await publisher.publish(
        *[status(v, PERIOD, 1) for v in dirty_villages],
        status(
            dirty_villages[0],
            PERIOD,
            2,
            counts={"collective": 1, "skip_level": 1},
            people={"collective": 6, "skip_level": 2},
        ),
        *[
            status(t, PERIOD, 1, counts={"skip_level": 1}, people={"skip_level": 3})
            for t in townships[:12]
        ],
    )
    await wait_committed(reporting.settings, sent)

    response = await reporting.get(
        "/v1/reports/summary", keys["county_reader"], root=COUNTY, period=PERIOD
    )

    assert response.status_code == 200
    summary = response.json()
    assert summary["root"]["code"] == COUNTY and summary["period"] == PERIOD
    levels = summary["levels"]
    assert without_counts(levels["county"]) == figures(1, 1, 1.0, True)
    assert without_counts(levels["township"]) == figures(20, 8, 0.4, True)
    assert without_counts(levels["village"]) == figures(300, 150, 0.5, True)
    assert levels["village"]["batches"] == counts(collective=150, skip_level=1)
    assert levels["village"]["people"] == counts(collective=900, skip_level=2)
    assert levels["township"]["batches"] == counts(skip_level=12)
    assert levels["township"]["people"] == counts(skip_level=36)
    assert levels["county"]["batches"] == counts()

    children = {c["unit"]["code"]: c["levels"] for c in summary["children"]}
    assert list(children) == townships
    first, eleventh, last = children[townships[0]], children[townships[10]], children[townships[19]]
    assert without_counts(first["township"]) == figures(1, 0, 0.4, False)
    assert without_counts(first["village"]) == figures(15, 0, 0.5, False)
    assert first["village"]["batches"] == counts(collective=15, skip_level=1)
    assert without_counts(eleventh["township"]) == figures(1, 0, 0.4, False)
    assert without_counts(eleventh["village"]) == figures(15, 15, 0.5, True)
    assert without_counts(last["township"]) == figures(1, 1, 0.4, True)
    assert "county" not in last

    # Phase 2: two more villages dirty and one clean again (151 of 300), a 13th township,
    # and the county itself: every target is missed.
    sent = await publisher.publish(
        status(demo_villages(townships[10])[0], PERIOD, 1),
        status(demo_villages(townships[11])[0], PERIOD, 1),
        status(dirty_villages[1], PERIOD, 2, three_no=True),
        status(townships[12], PERIOD, 1, counts={"skip_level": 1}, people={"skip_level": 3}),
        status(COUNTY, PERIOD, 1, counts={"incident": 1}, people={}),
    )
    await wait_committed(reporting.settings, sent)

    response = await reporting.get(
        "/v1/reports/summary", keys["county_reader"], root=COUNTY, period=PERIOD
    )

    levels = response.json()["levels"]
    assert without_counts(levels["county"]) == figures(1, 0, 1.0, False)
    assert without_counts(levels["township"]) == figures(20, 7, 0.4, False)
    assert without_counts(levels["village"]) == figures(300, 149, 0.5, False)
    assert levels["village"]["batches"] == counts(collective=151, skip_level=1)
    assert levels["village"]["people"] == counts(collective=906, skip_level=2)
    assert levels["county"]["batches"] == counts(incident=1)
    children = {c["unit"]["code"]: c["levels"] for c in response.json()["children"]}
    assert without_counts(children[townships[0]]["village"]) == figures(15, 1, 0.5, False)
    assert without_counts(children[townships[10]]["village"]) == figures(15, 14, 0.5, True)


async def test_a_city_summary_counts_every_unit_of_its_counties_from_the_registry(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    # The synthetic province: city 3501 has counties 350101 and 350102, each with 3 townships
    # of 3 villages. One village of 350101 is not three-no; nothing else ever had a status.
    assert SMALL_PROVINCE.townships_per_county == 3 and SMALL_PROVINCE.villages_per_township == 3
    city, county = "350100000000", "350101000000"
    sent = await publisher.publish(status("350101100201", "t-city", 1))
    await wait_committed(reporting.settings, sent)

    response = await reporting.get("/v1/reports/summary", keys["admin"], root=city, period="t-city")

    summary = response.json()
    assert set(summary["levels"]) == {"county", "township", "village"}
    assert without_counts(summary["levels"]["county"]) == figures(2, 2, 1.0, True)
    assert without_counts(summary["levels"]["township"]) == figures(6, 6, 0.4, True)
    assert without_counts(summary["levels"]["village"]) == figures(18, 17, 0.5, True)
    children = {c["unit"]["code"]: c["levels"] for c in summary["children"]}
    assert list(children) == [county, "350102000000"]
    assert without_counts(children[county]["village"]) == figures(9, 8, 0.5, True)
    assert without_counts(children["350102000000"]["village"]) == figures(9, 9, 0.5, True)


async def test_an_instance_serves_changes_another_instance_applied(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    # A second instance without a consumer: its cached summary must still follow the changes
    # the first instance applies.
    period = "t-instances"
    reader = Reporting(reporting.settings.model_copy(update={"reporting_run_consumer": False}))
    await reader.start()
    try:

        async def three_no() -> int:
            response = await reader.get(
                "/v1/reports/summary", keys["county_reader"], root=COUNTY, period=period
            )
            figures: int = response.json()["levels"]["village"]["three_no"]
            return figures

        await wait_until(lambda: reader_listening(reader), message="the second instance to listen")
        assert await three_no() == 300
        assert await three_no() == 300  # served from its cache
        sent = await publisher.publish(status(demo_villages()[0], period, 1))
        await wait_committed(reporting.settings, sent)
        await wait_until(lambda: changed(three_no), timeout=5, message="the cache to be renewed")
    finally:
        await reader.stop()


async def reader_listening(reader: Reporting) -> bool:
    return bool(reader.service.cache.listening)


async def changed(three_no: Callable[[], Awaitable[int]]) -> bool:
    return await three_no() == 299


async def test_the_nations_summary_sums_its_provinces_and_a_scoped_key_gets_its_own_scope(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    period = "t-nation"
    published = status(
        "350101100201", period, 1, counts={"collective": 1}, people={"collective": 5}
    )
    sent = await publisher.publish(published)
    await wait_committed(reporting.settings, sent)

    response = await reporting.get("/v1/reports/summary", keys["admin"], period=period)

    assert response.status_code == 200
    nation = response.json()
    assert nation["root"] is None
    provinces = [c["unit"] for c in nation["children"]]
    assert all(p["level"] == "province" and p["parent_code"] is None for p in provinces)
    assert {"340000000000", "350000000000"} <= {p["code"] for p in provinces}
    for level in ("county", "township", "village"):
        each = [c["levels"][level] for c in nation["children"]]
        whole = nation["levels"][level]
        assert whole["total"] == sum(f["total"] for f in each) > 0
        assert whole["three_no"] == sum(f["three_no"] for f in each)
        assert whole["ratio"] == whole["three_no"] / whole["total"]
    villages = nation["levels"]["village"]
    assert villages["three_no"] == villages["total"] - 1
    assert villages["batches"] == counts(collective=1)
    assert villages["people"] == counts(collective=5)
    province = await reporting.get(
        "/v1/reports/summary", keys["admin"], root="350000000000", period=period
    )
    [as_child] = [c for c in nation["children"] if c["unit"]["code"] == "350000000000"]
    assert as_child["levels"] == province.json()["levels"]
    # The newest status change under the province is the one just published.
    changed_at = datetime.fromisoformat(province.json()["last_changed_at"])
    assert changed_at == published.changed_at
    assert datetime.fromisoformat(nation["last_changed_at"]) >= changed_at

    own = await reporting.get("/v1/reports/summary", keys["county_reader"], period=period)
    assert own.json()["root"]["code"] == COUNTY
    unknown = await reporting.get("/v1/reports/summary", keys["admin"], period="no-such-period")
    assert unknown.status_code == 404
