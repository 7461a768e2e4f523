"""The eligible list with its downloads, and the warnings, in a real Chromium."""

import uuid

import httpx

from tests.support.app import bearer
from tests.support.waiting import poll

# Villages of 钱桥镇 no other console test posts for.
COUNTED_VILLAGE = "340722103201"
WARNED_VILLAGE = "340722103202"


async def post_visit(console_stack, *, unit: str, destination: str, headcount: int) -> str:
    event_id = str(uuid.uuid4())
    event = {
        "event_id": event_id,
        "type": "petition_visit",
        "unit_code": unit,
        "occurred_at": "2018-08-03T09:30:00+08:00",
        "destination_level": destination,
        "headcount": headcount,
    }
    async with httpx.AsyncClient(base_url=console_stack.urls["intake"]) as client:
        response = await client.post(
            "/v1/events", json=event, headers=bearer(console_stack.keys["county_desk"])
        )
    assert response.status_code == 202, response.text
    return event_id


async def test_the_eligible_list_names_why_a_village_is_not_eligible(visit, console_stack) -> None:
    await post_visit(console_stack, unit=COUNTED_VILLAGE, destination="county", headcount=7)
    tab = await visit()
    await tab.sign_in(console_stack.keys["county_reader"])

    async def listed_as_not_eligible() -> bool:
        await tab.goto("/eligible?period=2018&level=village")
        return (
            await tab.page.locator(f'#not-eligible a[href^="/units/{COUNTED_VILLAGE}"]').count()
            == 1
        )

    await poll(listed_as_not_eligible, timeout=20, message="the village to be not eligible")
    reason = tab.page.locator(f'#not-eligible tr:has(a[href^="/units/{COUNTED_VILLAGE}"]) td').last
    assert "集体" in await reason.inner_text()
    eligible = await tab.page.locator("#eligible tbody tr").count()
    not_eligible = await tab.page.locator("#not-eligible tbody tr").count()
    assert eligible + not_eligible == 300
    assert await tab.page.locator(f'#eligible a[href^="/units/{COUNTED_VILLAGE}"]').count() == 0
    await tab.shot("eligible")

    async with tab.page.expect_download() as download:
        await tab.page.get_by_role("link", name="CSV").click()
    saved = await (await download.value).path()
    text = saved.read_bytes().decode("utf-8-sig")
    assert "单位代码" in text and COUNTED_VILLAGE not in text.split("不符合")[0]


async def test_a_near_threshold_visit_shows_as_an_open_warning(visit, console_stack) -> None:
    event_id = await post_visit(
        console_stack, unit=WARNED_VILLAGE, destination="county", headcount=4
    )
    tab = await visit()
    await tab.sign_in(console_stack.keys["county_reader"])

    async def warned() -> bool:
        await tab.goto("/warnings")
        return await tab.page.locator(f'a[href="/events/{event_id}"]').count() == 1

    await poll(warned, timeout=20, message="the warning to show")
    row = tab.page.locator(f'tr:has(a[href="/events/{event_id}"])')
    assert "接近集体访人数" in await row.inner_text() and "未解除" in await row.inner_text()
    await tab.shot("warnings")
    await tab.goto("/overview?period=2018")
    assert int(await tab.page.locator("#open-warnings").inner_text()) >= 1
    await row.count()  # the page moved on; the warning links to its event:
    await tab.goto(f"/events/{event_id}")
    await tab.page.locator("#effect").wait_for()
    await tab.shot("event")
