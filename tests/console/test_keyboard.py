"""The console without a mouse, in a real Chromium: a desk fills and submits the 登记 form, and
the bureaus take an application through submission and the city's review, with keys only (Tab,
Enter, Space, the arrow keys, and typing into fields), the focus visible wherever it lands."""

import httpx

from tests.support.app import bearer
from tests.support.keyboard import focus_visible, tab_to

# Villages no other console test posts for or applies with.
DESK_VILLAGE = "340722106201"  # 桃水庄村, of 浮山镇
APPLIED = "340722107201"  # 河杨湾村, of 会宫镇
FIELD_VALUE = "(selector) => document.querySelector(selector).value"


async def value_of(page, selector: str) -> str:
    value: str = await page.evaluate(FIELD_VALUE, selector)
    return value


async def test_a_desk_records_a_visit_with_the_keyboard_alone(visit, console_stack) -> None:
    tab = await visit()
    page = tab.page
    await tab.sign_in(console_stack.keys["county_desk"])
    await tab.goto("/record")

    await tab_to(page, "#f-unit_code")
    assert await focus_visible(page)
    await page.keyboard.type(DESK_VILLAGE)
    await page.keyboard.press("Tab")
    # The time, segment by segment as headless Chromium lays the field out whatever the page's
    # language: month, day, year (then → to the hour), hour, minute, 上午/下午 (A: AM).
    for part in ("06", "03", "2018", "ArrowRight", "09", "30", "A"):
        await (page.keyboard.press if part.startswith("Arrow") else page.keyboard.type)(part)
    assert await value_of(page, "#f-occurred_at") == "2018-06-03T09:30"
    await tab_to(page, "#f-destination_level")
    while await value_of(page, "#f-destination_level") != "city":
        await page.keyboard.press("ArrowDown")
    await tab_to(page, "#f-headcount")
    await page.keyboard.type("2")
    await tab_to(page, "#f-skip_level")
    await page.keyboard.press("Space")
    assert await page.locator("#f-skip_level").is_checked()
    await tab_to(page, "form.record button[type=submit]")
    assert await focus_visible(page)
    await page.keyboard.press("Enter")

    await page.wait_for_url("**/record/*")
    await page.locator("#recorded").wait_for()
    event_id = page.url.rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=console_stack.urls["intake"]) as intake:
        stored = await intake.get(
            f"/v1/events/{event_id}", headers=bearer(console_stack.keys["county_desk"])
        )
    assert stored.status_code == 200, stored.text
    event = stored.json()
    assert event["unit_code"] == DESK_VILLAGE
    assert event["headcount"] == 2 and event["destination_level"] == "city"
    assert event["skip_level"] is True
    await tab.shot("keyboard-recorded")


async def test_bureaus_take_an_application_through_its_steps_with_the_keyboard(
    visit, console_stack
) -> None:
    county = await visit()
    page = county.page
    await county.sign_in(console_stack.keys["county_bureau"])
    await county.goto("/applications/new?period=2018")
    await tab_to(page, f"#pick-{APPLIED}")
    await page.keyboard.press("Space")
    await tab_to(page, "form.card button[type=submit]")
    async with page.expect_navigation():
        await page.keyboard.press("Enter")

    await tab_to(page, f"#self_evaluation-{APPLIED}")
    await page.keyboard.type("全年无越级上访、无集体上访、无极端恶性事件")
    await tab_to(page, "form.record button[type=submit]")
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    await page.wait_for_url("**/applications/*-*")
    assert await page.locator("#application-state").inner_text() == "草稿"
    application_url = page.url

    await tab_to(page, "#submit-form button")
    assert await focus_visible(page)
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    await page.locator('#application-state[data-state="submitted"]').wait_for()
    await county.shot("keyboard-submitted")

    # The city approves the unit: into the radio group (on 暂不办理), up twice to 通过.
    city = await visit()
    await city.sign_in(console_stack.keys["city_bureau"])
    await city.page.goto(application_url)
    await tab_to(city.page, f'input[name="decision-{APPLIED}"]')
    await city.page.keyboard.press("ArrowUp")
    await city.page.keyboard.press("ArrowUp")
    assert await city.page.locator(
        f'input[name="decision-{APPLIED}"][value="approve"]'
    ).is_checked()
    await tab_to(city.page, 'button[form="decide"]')
    async with city.page.expect_navigation():
        await city.page.keyboard.press("Enter")
    row = city.page.locator(f'#units tr[data-code="{APPLIED}"]')
    assert await row.get_attribute("data-state") == "recommended"
    await city.shot("keyboard-reviewed")
