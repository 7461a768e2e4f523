"""A front desk records visits through the 登记 form in a real Chromium: refusals are shown in
Chinese beside their fields, a 6-person visit to the city turns the village not three-no in
the overview within seconds, and neither a second submit nor a reload records twice."""

import httpx

from tests.conftest import TOWNSHIP
from tests.support.app import bearer
from tests.support.waiting import poll

FORM_DATA = "Object.fromEntries(new FormData(document.querySelector('form.record')))"
# A village of 枞阳镇 no other console test posts for.
VILLAGE = "340722100203"


async def status_of(console_stack, key: str, code: str) -> dict:
    async with httpx.AsyncClient(base_url=console_stack.urls["reporting"]) as client:
        response = await client.get(
            f"/v1/units/{code}/status", params={"period": "2018"}, headers=bearer(key)
        )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_desk_records_a_visit_that_turns_its_village_not_three_no(
    visit, console_stack
) -> None:
    key = console_stack.keys["county_desk"]
    tab = await visit()
    page = tab.page
    await tab.sign_in(key)
    await tab.goto(f"/record?unit={VILLAGE}")
    await page.get_by_label("发生时间").fill("2018-06-03T09:30")
    await page.get_by_label("去向").select_option("city")
    await page.get_by_label("人数").fill("0")
    await page.get_by_role("button", name="登记").click()
    error = page.locator("#f-headcount-error")
    assert await error.inner_text() == "不能小于 1"
    await tab.shot("record-refused")

    await page.get_by_label("人数").fill("6")
    form = await page.evaluate(FORM_DATA)
    await page.get_by_role("button", name="登记").click()
    await page.wait_for_url("**/record/*")
    await page.locator("#recorded").wait_for()
    recorded_url = page.url
    event_id = recorded_url.rsplit("/", 1)[1]
    assert event_id == form["event_id"]

    # The same form sent again (a second click after the first went through), with the
    # browser's cookies: the same confirmation, nothing recorded twice.
    again = await page.request.post(f"{console_stack.console_url}/record", form=form)
    assert again.ok and again.url == recorded_url
    await page.reload()
    await page.locator("#recorded").wait_for()

    async def evaluated() -> bool:
        await page.reload()
        return "集体上访" in await page.locator("#effect").inner_text()

    await poll(evaluated, timeout=20, message="the confirmation to show the visit's effect")
    await tab.shot("record-confirmed")

    # The desk's key reads no reports: the county's reader watches the overview.
    reader = await visit()
    await reader.sign_in(console_stack.keys["county_reader"])

    async def shown_not_three_no() -> bool:
        await reader.goto(f"/overview?unit={TOWNSHIP}&period=2018")
        row = reader.page.locator(f'tr[data-code="{VILLAGE}"]')
        return "not-three-no" in (await row.get_attribute("class") or "")

    await poll(shown_not_three_no, timeout=10, message="the overview to show the village")
    await reader.shot("overview-after-visit")
    status = await status_of(console_stack, console_stack.keys["county_reader"], VILLAGE)
    assert status["counting_event_ids"] == [event_id]  # recorded once

    await reader.goto(f"/units/{VILLAGE}?period=2018")
    assert await reader.page.locator("#unit-status").inner_text() == "2018年度考核期：非三无"
    assert await reader.page.locator("table a[href^='/events/']").count() == 1
    await reader.shot("unit-after-visit")


async def test_a_township_key_sees_a_clear_page_for_another_township(visit, console_stack) -> None:
    tab = await visit()
    await tab.sign_in(console_stack.keys["township_reader"])
    await tab.goto("/units/340722101201?period=2018")
    await tab.page.get_by_role("heading", name="无权查看").wait_for()
    await tab.shot("forbidden-other-township")
    await tab.goto("/overview?unit=340722101000&period=2018")
    await tab.page.get_by_role("heading", name="无权查看").wait_for()


async def test_an_unknown_unit_shows_a_clear_page(visit, console_stack) -> None:
    tab = await visit()
    await tab.sign_in(console_stack.keys["county_reader"])
    await tab.goto("/units/340722999999?period=2018")
    await tab.page.get_by_role("heading", name="没有找到").wait_for()
    await tab.shot("unknown-unit")
