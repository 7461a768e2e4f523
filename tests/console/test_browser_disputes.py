"""异议 in a real Chromium, with the cases service beside the stack: the county's desk disputes
a counted visit from the event's page, which shows the last day and the days left, and finds
it among its disputes; the county bureau finds it waiting, re-attributes the visit to the
village it belongs to, and the history shows both steps with who and why, while the same
decision sent again acts once and says so. The filer of a rejected dispute asks for review, and
the city's review is final. A second filing on a disputed event and a filing past the last day
are refused in Chinese."""

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from shared.campaign import SHANGHAI
from tests.support import events
from tests.support.app import bearer
from tests.support.cases import posted
from tests.support.waiting import poll

# Villages of 汤沟镇, which no other console test posts for.
DISPUTED = "340722112201"  # 大西店村
BELONGS = "340722112202"  # 龙塘畈村
TWICE = "340722112203"  # 大东畈村
LATE = "340722112204"  # 水大畈村
REVIEWED = "340722112205"  # 桃湖桥村
DECIDE_FORM = "Object.fromEntries(new FormData(document.querySelector('#decide-form')))"
# Sends a form as a page of the console would have sent it (one opened earlier).
SEND_FORM = (
    "([action, form]) => { const f = document.createElement('form'); f.method = 'post';"
    " f.action = action; for (const [k, v] of Object.entries(form)) {"
    " const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v;"
    " f.appendChild(i); } document.body.appendChild(f); f.submit(); }"
)


def visit_of(unit_code: str, **fields: Any) -> dict[str, Any]:
    """Six people of the village at the city's reception in 2018: a collective visit."""
    return (
        events.visit(
            unit_code, destination="city", headcount=6, occurred_at="2018-05-04T10:00:00+08:00"
        )
        | fields
    )


async def disputable(cases_stack, event: dict[str, Any]) -> tuple[str, date]:
    """The event accepted from the county's desk, evaluated (with its last day to dispute it)
    and read by the cases service; its id and that last day."""
    key = cases_stack.keys["county_desk"]
    async with httpx.AsyncClient(base_url=cases_stack.urls["intake"]) as intake:
        event_id = await posted(intake, key, event)

    async with httpx.AsyncClient(base_url=cases_stack.urls["evaluation"]) as evaluation:

        async def last_day() -> str | None:
            response = await evaluation.get(f"/v1/events/{event_id}/effect", headers=bearer(key))
            return response.json().get("dispute_until") if response.status_code == 200 else None

        until = await poll(last_day, timeout=30, message="evaluation to give the last day")

    async with httpx.AsyncClient(base_url=cases_stack.urls["cases"]) as cases:

        async def known() -> bool:
            # Without the unit its grounds need: refused (422, nothing stored) once the
            # service has read the event, 404 before.
            probe = {
                "dispute_id": str(uuid.uuid4()),
                "event_id": event_id,
                "grounds": "not_ours",
                "statement": "探测",
            }
            response = await cases.post("/v1/disputes", json=probe, headers=bearer(key))
            if response.status_code == 404:
                return False
            assert response.status_code == 422, response.text
            return True

        await poll(known, timeout=30, message="the cases service to read the event")
    return event_id, date.fromisoformat(until)


def today() -> date:
    return datetime.now(SHANGHAI).date()


def nav_link(tab, name: str):
    return tab.page.get_by_role("navigation", name="主导航").get_by_role("link", name=name)


async def test_a_desk_disputes_a_visit_and_the_county_bureau_reattributes_it(
    cases_visit, cases_stack
) -> None:
    event_id, until = await disputable(cases_stack, visit_of(DISPUTED))
    days_left = (until - today()).days
    assert days_left >= 0

    desk = await cases_visit()
    page = desk.page
    await desk.sign_in(cases_stack.keys["county_desk"])
    await desk.goto(f"/events/{event_id}")
    shown = f"（剩 {days_left} 天）" if days_left else "（今天截止）"
    assert await page.locator("#dispute-window").inner_text() == f"异议截止 {until}{shown}"

    # Not ours, without the unit it is ours of: refused beside the field, nothing filed.
    await page.get_by_label("异议理由").select_option("not_ours")
    await page.get_by_label("陈述").fill("来访人户籍在龙塘畈村，不属本村")
    await page.get_by_role("button", name="提出异议").click()
    error = page.locator("#dispute-proposed_unit-error")
    assert await error.inner_text() == "以这一理由提出异议时必须填写"
    await desk.shot("dispute-refused")

    await page.get_by_label("应属单位代码").fill(BELONGS)
    await page.get_by_role("button", name="提出异议").click()
    await page.wait_for_url("**/disputes/*")
    dispute_id = page.url.rsplit("/", 1)[1]
    assert await page.locator("#dispute-state").get_attribute("data-state") == "filed"
    assert await page.locator("#dispute-until").inner_text() == str(until)
    await desk.shot("dispute-filed")

    await nav_link(desk, "异议").click()
    listed = page.locator(f'#disputes tr[data-id="{dispute_id}"]')
    assert "已提出，待决定" in await listed.inner_text()
    await desk.shot("disputes-of-the-desk")

    # The county bureau: the visit's row on the village's page says until when; the dispute
    # waits for it.
    bureau = await cases_visit()
    await bureau.sign_in(cases_stack.keys["county_bureau"])

    async def row_shown() -> bool:
        await bureau.goto(f"/units/{DISPUTED}?period=2018")
        return await bureau.page.locator(f'tr:has(a[href="/events/{event_id}"])').count() == 1

    await poll(row_shown, timeout=20, message="the village's page to list the visit")
    row = bureau.page.locator(f'tr:has(a[href="/events/{event_id}"]) td.dispute')
    assert f"异议截止 {until}" in await row.inner_text()
    await bureau.shot("unit-with-dispute-window")

    await nav_link(bureau, "异议").click()
    await bureau.page.locator(f'#waiting tr[data-id="{dispute_id}"] a', has_text="查看").click()
    decide = bureau.page.locator("#decide-form")
    await decide.get_by_label("决定", exact=True).select_option("uphold_reattribute")
    await decide.get_by_label("理由", exact=True).fill("经核实，来访人户籍在龙塘畈村")
    await decide.get_by_role("button", name="决定").click()
    assert (
        await bureau.page.locator("#decide-new_unit-error").inner_text()
        == "改属地时必须填写新属地单位代码"
    )
    assert await bureau.page.locator("#dispute-state").get_attribute("data-state") == "filed"

    await bureau.page.get_by_label("新属地单位代码").fill(BELONGS)
    decided_form = await bureau.page.evaluate(DECIDE_FORM)
    await bureau.page.get_by_role("button", name="决定").click()
    await bureau.page.locator('#dispute-state[data-state="decided"]').wait_for()
    assert "维持异议并改属地：改属 龙塘畈村" in await bureau.page.locator("#decision").inner_text()
    steps = bureau.page.locator("#history tbody tr")
    assert await steps.evaluate_all("rows => rows.map(r => r.dataset.action)") == [
        "filed",
        "decided",
    ]
    filed = await bureau.page.locator('#history tr[data-action="filed"]').inner_text()
    assert "枞阳县登记窗口" in filed and "来访人户籍在龙塘畈村，不属本村" in filed
    decided = await bureau.page.locator('#history tr[data-action="decided"]').inner_text()
    assert "枞阳县信访局" in decided and "经核实，来访人户籍在龙塘畈村" in decided
    await bureau.shot("dispute-decided")

    # The decision sent again (a second click): the version protects, and the page says so.
    await bureau.page.evaluate(SEND_FORM, [f"/disputes/{dispute_id}/decide", decided_form])
    await bureau.page.locator("#notice").wait_for()
    assert "已经更新过" in await bureau.page.locator("#notice").inner_text()
    assert await bureau.page.locator("#dispute-state").inner_text() == "已决定"
    assert await steps.count() == 2
    await bureau.shot("dispute-decided-stale")


async def test_a_second_filing_on_a_disputed_event_is_refused_in_chinese(
    cases_visit, cases_stack
) -> None:
    event_id, _ = await disputable(cases_stack, visit_of(TWICE))
    desk, bureau = await cases_visit(), await cases_visit()
    await desk.sign_in(cases_stack.keys["county_desk"])
    await bureau.sign_in(cases_stack.keys["county_bureau"])
    for tab in (desk, bureau):
        await tab.goto(f"/events/{event_id}")
        await tab.page.get_by_label("异议理由").select_option("facts")
        await tab.page.get_by_label("陈述").fill("当日来访人数为3人，不是6人")

    await desk.page.get_by_role("button", name="提出异议").click()
    await desk.page.wait_for_url("**/disputes/*")
    await bureau.page.get_by_role("button", name="提出异议").click()
    error = bureau.page.locator("#dispute-error")
    assert await error.inner_text() == "这一事件已有异议正在办理，不能再提出。"
    await bureau.shot("dispute-twice")

    await nav_link(bureau, "异议").click()
    rows = bureau.page.locator("#disputes tbody tr", has_text="大东畈村")
    assert await rows.count() == 1


async def test_a_filing_past_the_last_day_is_refused_with_that_day(
    cases_visit, cases_stack
) -> None:
    reported = datetime.now(SHANGHAI) - timedelta(days=30)
    event_id, until = await disputable(
        cases_stack, visit_of(LATE, reported_at=reported.isoformat())
    )
    assert until < today()
    tab = await cases_visit()
    page = tab.page
    await tab.sign_in(cases_stack.keys["county_desk"])
    await tab.goto(f"/events/{event_id}")
    assert await page.locator("#dispute-window").inner_text() == f"已过异议期（{until} 截止）"
    assert await page.locator("#dispute-form").count() == 0

    # A form opened before the last day and sent after it.
    csrf = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    form = {
        "csrf_token": csrf,
        "dispute_id": str(uuid.uuid4()),
        "grounds": "other",
        "statement": "通报下达时已过节假日",
    }
    await page.evaluate(SEND_FORM, [f"/events/{event_id}/disputes", form])
    await page.locator("#dispute-error").wait_for()
    assert (
        await page.locator("#dispute-error").inner_text()
        == f"已过异议期，不能再提出异议：最后一天是 {until}"
    )
    await tab.shot("dispute-late")


async def test_the_filer_asks_for_review_of_a_rejection_and_the_city_voids_the_visit(
    cases_visit, cases_stack
) -> None:
    event_id, _ = await disputable(cases_stack, visit_of(REVIEWED))
    dispute_id = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=cases_stack.urls["cases"]) as cases:
        filing = {
            "dispute_id": dispute_id,
            "event_id": event_id,
            "grounds": "facts",
            "statement": "当日无人来访",
        }
        filed = await cases.post(
            "/v1/disputes", json=filing, headers=bearer(cases_stack.keys["county_desk"])
        )
        assert filed.status_code == 201, filed.text
        rejected = await cases.post(
            f"/v1/disputes/{dispute_id}/decide",
            json={"decision": "reject", "reason": "接待登记属实"},
            headers=bearer(cases_stack.keys["county_bureau"]) | {"If-Match": filed.headers["ETag"]},
        )
        assert rejected.status_code == 200, rejected.text

    # The desk, whose dispute was rejected, may ask for review and no longer withdraw.
    desk = await cases_visit()
    await desk.sign_in(cases_stack.keys["county_desk"])
    await desk.goto(f"/disputes/{dispute_id}")
    assert await desk.page.locator("#withdraw-form").count() == 0
    asking = desk.page.locator("#review-request-form")
    await asking.get_by_label("理由", exact=True).fill("有监控记录为证，请市信访局复核")
    await asking.get_by_role("button", name="申请复核").click()
    await desk.page.locator('#dispute-state[data-state="review_requested"]').wait_for()

    city = await cases_visit()
    await city.sign_in(cases_stack.keys["city_bureau"])
    await nav_link(city, "异议").click()
    await city.page.locator(f'#waiting tr[data-id="{dispute_id}"] a', has_text="查看").click()
    review = city.page.locator("#review-form")
    await review.get_by_label("决定", exact=True).select_option("uphold_void")
    await review.get_by_label("理由", exact=True).fill("经查监控，当日无人来访")
    await review.get_by_role("button", name="复核（终局）").click()
    await city.page.locator('#dispute-state[data-state="reviewed"]').wait_for()
    assert "维持异议并核销" in await city.page.locator("#review").inner_text()
    steps = city.page.locator("#history tbody tr")
    assert await steps.evaluate_all("rows => rows.map(r => r.dataset.action)") == [
        "filed",
        "decided",
        "review_requested",
        "reviewed",
    ]
    reviewed = await city.page.locator('#history tr[data-action="reviewed"]').inner_text()
    assert "铜陵市信访局" in reviewed and "经查监控，当日无人来访" in reviewed
    assert await city.page.locator("#review-form").count() == 0
    await city.shot("dispute-reviewed")
