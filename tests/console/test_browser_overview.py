"""A county reader signs in, sees the demo county's overview, and drills down to a village,
in a real Chromium."""

import httpx

from tests.conftest import COUNTY, TOWNSHIP, VILLAGE
from tests.support.app import bearer


async def summary_of(console_stack, key: str, root: str, period: str) -> dict:
    async with httpx.AsyncClient(base_url=console_stack.urls["reporting"]) as client:
        response = await client.get(
            "/v1/reports/summary", params={"root": root, "period": period}, headers=bearer(key)
        )
    assert response.status_code == 200, response.text
    return response.json()


async def test_reader_sees_the_county_overview_and_drills_down_to_a_village(
    visit, console_stack
) -> None:
    key = console_stack.keys["county_reader"]
    tab = await visit()
    await tab.sign_in(key)
    await tab.goto("/overview?period=2018")
    page = tab.page
    await page.get_by_role("heading", level=1, name="枞阳县").wait_for()
    expected = await summary_of(console_stack, key, COUNTY, "2018")
    villages = page.locator('[data-level="village"] .figure')
    assert f"{expected['levels']['village']['three_no']} / 300" in await villages.inner_text()
    assert expected["levels"]["village"]["total"] == 300
    rows = page.locator("table.children tbody tr")
    assert await rows.count() == len(expected["children"]) == 20
    await tab.shot("overview-county")

    await page.get_by_role("link", name="枞阳镇").first.click()
    await page.wait_for_url(f"**unit={TOWNSHIP}**")
    await page.get_by_role("heading", level=1, name="枞阳镇").wait_for()
    await tab.shot("overview-township")

    village_link = page.locator(f'tr[data-code="{VILLAGE}"] a').first
    village_name = await village_link.inner_text()
    await village_link.click()
    await page.wait_for_url(f"**/units/{VILLAGE}**")
    await page.get_by_role("heading", level=1, name=village_name).wait_for()
    assert await page.get_by_role("heading", name="排查调处例会").is_visible()
    await tab.shot("unit-village")


async def test_the_children_table_sorts_by_the_village_ratio(visit, console_stack) -> None:
    tab = await visit()
    await tab.sign_in(console_stack.keys["county_reader"])
    await tab.goto("/overview?period=2018")
    await tab.page.get_by_role("link", name="三无村（居）").click()
    await tab.page.wait_for_url("**sort=village**")
    header = tab.page.locator('th[aria-sort="ascending"]')
    assert "三无村（居）" in await header.inner_text()


async def test_search_finds_a_village_by_name(visit, console_stack) -> None:
    tab = await visit()
    await tab.sign_in(console_stack.keys["county_reader"])
    await tab.page.get_by_label("查找单位").fill("3407221002")
    await tab.page.get_by_role("button", name="查找").click()
    await tab.page.wait_for_url("**/search**")
    assert await tab.page.locator(f'a[href^="/units/{VILLAGE}"]').count() == 1
    await tab.shot("search")


async def test_a_phone_sized_screen_shows_the_overview(visit, console_stack) -> None:
    tab = await visit(width=390, height=844)
    await tab.sign_in(console_stack.keys["county_reader"])
    await tab.page.get_by_role("heading", level=1, name="枞阳县").wait_for()
    width = await tab.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    await tab.shot("overview-phone")
