"""The 申报 pages in a real Chromium, with the three bureau keys: the county builds an
application from the eligible list with each unit's self-evaluation and submits it, the city
approves one unit and returns another with a reason, the province awards (and revokes); a form
sent twice acts once, bad input is shown beside its unit, and a wrong-role page is 无权."""

import httpx

from tests.support.app import bearer

# Villages of 白梅乡 no other console test posts for or applies with.
AWARDED = "340722110201"  # 塘塘洲村
RETURNED = "340722110202"  # 桥松庄村
REVOKED = "340722110203"  # 河凤圩村
SUBMIT_FORM = "Object.fromEntries(new FormData(document.querySelector('#submit-form')))"
DECIDE_FORM = "Object.fromEntries(new FormData(document.querySelector('#decide')))"


async def applications_with(console_stack, code: str) -> list[dict]:
    async with httpx.AsyncClient(base_url=console_stack.urls["applications"]) as client:
        response = await client.get(
            "/v1/applications",
            params={"period": "2018"},
            headers=bearer(console_stack.keys["county_bureau"]),
        )
    assert response.status_code == 200, response.text
    return [a for a in response.json()["items"] if code in {u["code"] for u in a["units"]}]


def unit_row(tab, code: str):
    return tab.page.locator(f'#units tr[data-code="{code}"]')


async def create_and_submit(visit, console_stack, codes: list[str]) -> str:
    """The county bureau's part: the application's id once it is submitted."""
    county = await visit()
    page = county.page
    await county.sign_in(console_stack.keys["county_bureau"])
    await page.get_by_role("link", name="申报", exact=True).click()
    await page.get_by_label("考核期", exact=True).select_option("2018")
    await page.get_by_role("button", name="查看").click()
    await page.locator("#new-application").click()
    for code in codes:
        await page.locator(f"#pick-{code}").check()
    await page.get_by_role("button", name="下一步：填写自评").click()
    for code in codes:
        await page.locator(f"#self_evaluation-{code}").fill(
            "全年无越级上访、无集体上访、无极端恶性事件"
        )
    await page.locator(f"#rectifications-{codes[0]}").fill("建立矛盾纠纷排查台账\n每周例会")
    await page.get_by_role("button", name="创建申报（草稿）").click()
    await page.wait_for_url("**/applications/*-*")
    assert await page.locator("#application-state").inner_text() == "草稿"
    await page.get_by_role("button", name="提交申报").click()
    await page.locator('#application-state[data-state="submitted"]').wait_for()
    return page.url.rsplit("/", 1)[1]


async def test_county_applies_city_reviews_province_awards(visit, console_stack) -> None:
    county = await visit()
    page = county.page
    await county.sign_in(console_stack.keys["county_bureau"])
    await page.get_by_role("link", name="申报", exact=True).click()
    await page.get_by_label("考核期", exact=True).select_option("2018")
    await page.get_by_role("button", name="查看").click()
    await page.locator("#new-application").click()
    await page.locator(f"#pick-{AWARDED}").check()
    await page.locator(f"#pick-{RETURNED}").check()
    await county.shot("application-new")
    await page.get_by_role("button", name="下一步：填写自评").click()

    # A unit without its self-evaluation is refused beside that unit, and nothing is stored.
    await page.locator(f"#self_evaluation-{AWARDED}").fill("全年无越级上访、无集体上访")
    await page.get_by_role("button", name="创建申报（草稿）").click()
    assert await page.locator(f"#error-{RETURNED}").inner_text() == "自评：此项不能为空"
    assert await page.locator(f"#error-{AWARDED}").count() == 0
    assert await applications_with(console_stack, AWARDED) == []
    await county.shot("application-refused")

    await page.locator(f"#self_evaluation-{RETURNED}").fill("全年无越级上访、无集体上访")
    await page.locator(f"#rectifications-{AWARDED}").fill("建立矛盾纠纷排查台账")
    await page.get_by_role("button", name="创建申报（草稿）").click()
    await page.wait_for_url("**/applications/*-*")
    application_id = page.url.rsplit("/", 1)[1]
    assert await page.locator("#application-state").inner_text() == "草稿"
    submit_form = await page.evaluate(SUBMIT_FORM)
    await page.get_by_role("button", name="提交申报").click()
    await page.locator('#application-state[data-state="submitted"]').wait_for()

    # The submit form sent again (a second click): the version protects, nothing acts twice.
    again = await page.request.post(
        f"{console_stack.console_url}/applications/{application_id}/submit", form=submit_form
    )
    assert again.status == 412
    await page.goto(f"{console_stack.console_url}/applications/{application_id}")
    stored = await applications_with(console_stack, AWARDED)
    assert [a["application_id"] for a in stored] == [application_id]
    assert stored[0]["version"] == int(submit_form["version"]) + 1
    await county.shot("application-submitted")

    # The city: a return without a reason is refused beside the unit; then approve and return.
    city = await visit()
    await city.sign_in(console_stack.keys["city_bureau"])
    await city.goto("/applications?period=2018")
    await city.page.locator(f'#applications tr[data-id="{application_id}"] a').click()
    await unit_row(city, AWARDED).get_by_label("通过（推荐）").check()
    await unit_row(city, RETURNED).get_by_label("退回").check()
    await city.page.get_by_role("button", name="提交初审意见").click()
    assert await city.page.locator(f"#error-{RETURNED}").inner_text() == "退回须填写理由"
    assert await unit_row(city, AWARDED).get_attribute("data-state") == "submitted"
    await city.shot("application-review-refused")
    await city.page.locator(f"#reason-{RETURNED}").fill("自评材料不全，请补充例会记录")
    decide_form = await city.page.evaluate(DECIDE_FORM)
    await city.page.get_by_role("button", name="提交初审意见").click()
    await city.page.locator('#application-state[data-state="reviewed"]').wait_for()
    assert "已推荐" in await unit_row(city, AWARDED).locator(".unit-state").inner_text()
    returned = unit_row(city, RETURNED)
    assert "已退回" in await returned.locator(".unit-state").inner_text()
    assert await returned.locator(".reason").inner_text() == "自评材料不全，请补充例会记录"

    # The review sent twice: a clear message and the application as it is now.
    await city.page.evaluate(
        "form => { const f = document.createElement('form'); f.method = 'post';"
        f" f.action = '/applications/{application_id}/review';"
        " for (const [k, v] of Object.entries(form)) { const i = document.createElement('input');"
        " i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); }"
        " document.body.appendChild(f); f.submit(); }",
        decide_form,
    )
    await city.page.locator("#notice").wait_for()
    assert "已经更新过" in await city.page.locator("#notice").inner_text()
    assert await city.page.locator("#application-state").inner_text() == "已初审，待省命名"
    await city.shot("application-review-stale")

    # The province awards the recommended unit.
    province = await visit()
    await province.sign_in(console_stack.keys["province_bureau"])
    await province.goto(f"/applications/{application_id}")
    await unit_row(province, AWARDED).get_by_label("命名", exact=True).check()
    await province.page.get_by_role("button", name="提交命名决定").click()
    await province.page.locator('#application-state[data-state="decided"]').wait_for()
    assert "已命名" in await unit_row(province, AWARDED).locator(".unit-state").inner_text()
    actions = await province.page.locator("#history tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.action)"
    )
    assert actions == ["created", "submitted", "approved", "returned", "awarded"]
    returned_step = province.page.locator('#history tr[data-action="returned"]')
    assert "铜陵市信访局" in await returned_step.inner_text()
    assert "自评材料不全" in await returned_step.inner_text()
    await province.shot("application-awarded")

    async with province.page.expect_download() as download:
        await province.page.get_by_role("link", name="PDF").click()
    saved = await (await download.value).path()
    assert saved.read_bytes().startswith(b"%PDF")

    await province.goto("/applications?period=2018")
    title = province.page.locator(f'#titles tr[data-code="{AWARDED}"]')
    assert await title.get_attribute("data-state") == "held"
    assert "保持" in await title.inner_text()
    await province.shot("applications-titles")


async def test_the_province_revokes_a_title_with_a_reason(visit, console_stack) -> None:
    application_id = await create_and_submit(visit, console_stack, [REVOKED])
    city = await visit()
    await city.sign_in(console_stack.keys["city_bureau"])
    await city.goto(f"/applications/{application_id}")
    await unit_row(city, REVOKED).get_by_label("通过（推荐）").check()
    await city.page.get_by_role("button", name="提交初审意见").click()
    await city.page.locator('#application-state[data-state="reviewed"]').wait_for()

    province = await visit()
    await province.sign_in(console_stack.keys["province_bureau"])
    await province.goto(f"/applications/{application_id}")
    await unit_row(province, REVOKED).get_by_label("命名", exact=True).check()
    await province.page.get_by_role("button", name="提交命名决定").click()
    await province.page.locator('#application-state[data-state="decided"]').wait_for()

    # Without a reason: refused beside the unit, the title kept.
    await province.page.get_by_role("button", name="摘牌").click()
    assert "理由" in await province.page.locator(f"#error-{REVOKED}").inner_text()
    assert await unit_row(province, REVOKED).get_attribute("data-state") == "awarded"
    await province.page.locator(f"#revoke-reason-{REVOKED}").fill("通报发现越级上访")
    await province.page.get_by_role("button", name="摘牌").click()
    await province.page.locator(
        f'#units tr[data-code="{REVOKED}"][data-state="revoked"]'
    ).wait_for()
    assert (
        await province.page.locator('#history tr[data-action="revoked"] td.reason').inner_text()
        == "通报发现越级上访"
    )
    await province.shot("application-revoked")
    await province.goto("/applications?period=2018")
    title = province.page.locator(f'#titles tr[data-code="{REVOKED}"]')
    assert await title.get_attribute("data-state") == "revoked"


async def test_a_bureau_of_another_level_gets_the_no_right_page(visit, console_stack) -> None:
    city = await visit()
    await city.sign_in(console_stack.keys["city_bureau"])
    response = await city.page.goto(f"{console_stack.console_url}/applications/new?period=2018")
    assert response is not None and response.status == 403
    assert await city.page.locator("h1").inner_text() == "无权查看"
    await city.shot("applications-forbidden")

    reader = await visit()
    await reader.sign_in(console_stack.keys["county_reader"])
    await reader.goto("/overview")
    assert await reader.page.get_by_role("link", name="申报", exact=True).count() == 0
