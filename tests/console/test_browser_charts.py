"""The 趋势 page in a real Chromium: a township with visits in three campaign years draws one
point per begun period in every series, each at the share worked out here by hand, and every
chart's table lists exactly what its SVG draws."""

from datetime import datetime, timedelta

import httpx

from shared.campaign import SHANGHAI
from tests.support import events
from tests.support.app import bearer
from tests.support.charts import chart_ids, chart_on
from tests.support.waiting import wait_until

# 义津镇 and its 15 villages: no other console test posts for them.
TOWNSHIP = "340722105000"
FIRST, SECOND, THIRD = "340722105201", "340722105202", "340722105203"
WARNED = "340722105204"
VILLAGES = 15


def this_year() -> int:
    return datetime.now(SHANGHAI).year


def begun_periods() -> list[str]:
    """The campaign file's periods that have begun: "2018", then every calendar year since."""
    return ["2018", *(str(year) for year in range(2019, this_year() + 1))]


def city_visit(unit: str, year: int) -> dict:
    """A visit to the city: a village's 越级上访, which makes it not three-no that year (and
    leaves its township three-no). In a past year on 2 January; in this one halfway between
    its start and now, so that it has happened whatever the day or hour the test runs."""
    now = datetime.now(SHANGHAI)
    start = datetime(year, 1, 1, tzinfo=SHANGHAI)
    at = start + (now - start) / 2 if year == now.year else start + timedelta(days=1, hours=10)
    return events.visit(unit, destination="city", skip_level=True, occurred_at=at.isoformat())


async def post(console_stack, event: dict) -> None:
    async with httpx.AsyncClient(base_url=console_stack.urls["intake"]) as intake:
        response = await intake.post(
            "/v1/events", json=event, headers=bearer(console_stack.keys["county_desk"])
        )
    assert response.status_code == 202, response.text


def shares(not_three_no: list[int]) -> list[str]:
    """The village share of the township per period, as the chart's data-value says it."""
    return [f"{(VILLAGES - n) / VILLAGES:.4f}".rstrip("0").rstrip(".") for n in not_three_no]


async def test_a_township_with_three_years_of_visits_draws_a_point_per_period(
    visit, console_stack
) -> None:
    year = this_year()
    # Three periods of data: one village out in the year before last, two last year, three now.
    for unit, years in ((FIRST, (0, 1, 2)), (SECOND, (1, 2)), (THIRD, (2,))):
        for offset in years:
            await post(console_stack, city_visit(unit, year - 2 + offset))
    periods = begun_periods()
    expected_out = [0] * (len(periods) - 3) + [1, 2, 3]

    tab = await visit()
    await tab.sign_in(console_stack.keys["county_reader"])
    figure = f"share-{TOWNSHIP}"

    async def evaluated() -> bool:
        await tab.goto("/trends")
        chart = await chart_on(tab.page, figure)
        return chart is not None and [d[2] for d in chart.series("village")] == shares(expected_out)

    await wait_until(evaluated, timeout=30, message="the county's trends to show the three years")
    chart = await chart_on(tab.page, figure)
    assert chart is not None
    assert [d[1] for d in chart.series("village")] == periods
    assert [d[1] for d in chart.series("township")] == periods
    assert {d[2] for d in chart.series("township")} == {"1"}  # a city visit leaves it three-no
    assert chart.series("village")[-1][3] == f"80.0%（12/{VILLAGES}）"
    await tab.shot("trends-county")

    # Every chart of the page, the county's own and the warnings' included: the table lists
    # what the SVG draws, point for point.
    ids = await chart_ids(tab.page)
    assert len(ids) == 1 + 20 + 2  # the county, its 20 townships, warnings and overdue cases
    for chart_id in ids:
        drawn = await chart_on(tab.page, chart_id)
        assert drawn is not None and drawn.drawn, chart_id
        assert sorted(drawn.drawn) == sorted(drawn.listed), chart_id


async def test_a_townships_page_charts_each_village_and_its_warnings_by_week(
    visit, console_stack
) -> None:
    year = this_year()
    await post(console_stack, city_visit(FIRST, year - 1))
    # Four people of the village at the county: near the collective threshold, a warning now.
    await post(
        console_stack,
        events.visit(
            WARNED,
            destination="county",
            headcount=4,
            occurred_at=datetime.now(SHANGHAI).isoformat(),
        ),
    )
    week = datetime.now(SHANGHAI).date().isocalendar()
    this_week = f"{week.year}-W{week.week:02d}"
    tab = await visit()
    await tab.sign_in(console_stack.keys["county_bureau"])

    async def warned() -> bool:
        await tab.goto(f"/trends?unit={TOWNSHIP}")
        grid = await chart_on(tab.page, "warnings")
        return grid is not None and (WARNED, this_week, "1", "1") in grid.drawn

    await wait_until(warned, timeout=30, message="the warning to show in this week's column")
    first = await chart_on(tab.page, f"share-{FIRST}")
    assert first is not None
    out_last_year = first.series("village")[-2]
    assert out_last_year[1:] == (str(year - 1), "0", "0.0%（0/1）")
    # A single village's share is 0 or 100%: its chart draws no target.
    assert await tab.page.locator(f"#share-{FIRST} line.target").count() == 0
    assert await tab.page.locator("#share-root line.target").count() == 1  # the villages'

    grid = await chart_on(tab.page, "warnings")
    assert grid is not None
    assert len(grid.drawn) == (1 + VILLAGES) * 12  # the township itself and each village
    assert sorted(grid.drawn) == sorted(grid.listed)
    await tab.page.get_by_text("数据表：义津镇：近12周预警（按单位、按周）").click()
    await tab.shot("trends-township")


async def test_the_trends_page_fits_a_phone_sized_screen(visit, console_stack) -> None:
    tab = await visit(width=390, height=844)
    await tab.sign_in(console_stack.keys["county_reader"])
    await tab.goto("/trends")
    await tab.page.locator("#share-root svg").wait_for()
    width = await tab.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    await tab.page.get_by_text("数据表：枞阳县：近12周预警（按单位、按周）").click()
    assert await tab.page.evaluate("document.documentElement.scrollWidth") <= 390
    await tab.shot("trends-phone")
