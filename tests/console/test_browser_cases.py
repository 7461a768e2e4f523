"""信访事项 in a real Chromium, with the cases service beside the stack: the county's desk
registers a case at 一站式接待 and finds it on its page with the route clock running, routes it
to the county's 民政, which finds it in its queue and accepts it; the case's timeline says who
did what, when and why. A handler's queue puts the fewest days left first, overdue in red. A
reader sees a case without the petitioner's summary. A refused step says why in Chinese and
changes nothing; a step sent twice acts once. The county bureau supervises an overdue case
from its overdue list."""

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from shared.campaign import SHANGHAI
from tests.support.app import bearer

# Villages of 金社镇 (which has no handling bodies), which no other console test uses.
TOWNSHIP = "340722116000"  # 金社镇
REGISTERED = "340722116201"  # 松西岗村
QUEUED = "340722116202"  # 李松桥村
READ = "340722116203"  # 桂大岗村
REFUSED = "340722116204"  # 凤水畈村
OVERDUE = "340722116205"  # 石桥墩村
REPEATED = "340722116206"  # 塘松畈村
REVIEWED = "340722116207"  # 杨竹畈村
CLOSED = "340722116208"  # 石石庙村
COUNTY = "340722000000"
SUMMARY = "低保申请三个月未获答复，要求说明理由"
# Sends a form as a page of the console would have sent it (one opened earlier).
SEND_FORM = (
    "([action, form]) => { const f = document.createElement('form'); f.method = 'post';"
    " f.action = action; for (const [k, v] of Object.entries(form)) {"
    " const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v;"
    " f.appendChild(i); } document.body.appendChild(f); f.submit(); }"
)
CONFLICT = "与这一事项现在的状态不符，没有办成（可能已经办理过）。下面是它现在的状态。"
ROUTE_FORM = "Object.fromEntries(new FormData(document.querySelector('#route-form')))"


def now() -> datetime:
    return datetime.now(SHANGHAI)


def today() -> date:
    return now().date()


def nav_link(tab, name: str):
    return tab.page.get_by_role("navigation", name="主导航").get_by_role("link", name=name)


async def registered(
    cases_stack, unit_code: str, *, received_at: datetime, petitioner_ref: str | None = None
) -> dict[str, Any]:
    """A case registered by the county's desk through the API (a petitioner of its own unless
    named)."""
    registration = {
        "case_id": str(uuid.uuid4()),
        "unit_code": unit_code,
        "received_at": received_at.isoformat(),
        "channel": "letter",
        "category": "社会救助",
        "petitioner_ref": petitioner_ref or f"ref-{uuid.uuid4()}",
        "headcount": 1,
        "summary": SUMMARY,
    }
    async with httpx.AsyncClient(base_url=cases_stack.urls["cases"]) as cases:
        response = await cases.post(
            "/v1/cases", json=registration, headers=bearer(cases_stack.keys["county_desk"])
        )
    assert response.status_code in (200, 201), response.text
    case: dict[str, Any] = response.json()
    return case


async def routed_to_civil_affairs(cases_stack, case: dict[str, Any], *, at: datetime) -> None:
    target = {"unit_code": COUNTY, "body": "民政"}
    body = {"to": target, "reason": "交县民政局", "at": at.isoformat()}
    async with httpx.AsyncClient(base_url=cases_stack.urls["cases"]) as cases:
        response = await cases.post(
            f"/v1/cases/{case['case_id']}/route",
            json=body,
            headers=bearer(cases_stack.keys["county_desk"]) | {"If-Match": f'"{case["version"]}"'},
        )
    assert response.status_code == 200, response.text


async def history_of(tab) -> list[str]:
    rows = tab.page.locator("#history tbody tr")
    actions: list[str] = await rows.evaluate_all("rows => rows.map(r => r.dataset.action)")
    return actions


async def test_a_desk_registers_a_case_routes_it_to_civil_affairs_and_the_body_accepts_it(
    cases_visit, case_keys
) -> None:
    desk = await cases_visit()
    page = desk.page
    await desk.sign_in(case_keys["county_desk"])
    await nav_link(desk, "一站式接待").click()
    received = now() - timedelta(days=2)
    form = page.locator("#case-form")
    await form.get_by_label("单位代码").fill(REGISTERED)
    await form.get_by_label("收到时间").fill(received.strftime("%Y-%m-%dT%H:%M"))
    await form.get_by_label("信访形式").select_option("visit")
    await form.get_by_label("问题类别").fill("社会救助")
    await form.get_by_label("信访人身份证号或登记号").fill("340722199001011234")
    await form.get_by_label("人数").fill("2")
    await form.get_by_label("诉求摘要").fill(SUMMARY)
    await form.get_by_role("button", name="登记", exact=True).click()
    await page.wait_for_url("**/cases/*-*")
    case_id = page.url.rsplit("/", 1)[1]

    assert await page.locator("#case-state").get_attribute("data-state") == "registered"
    assert await page.locator("#case-owner").inner_text() == "枞阳县"
    assert await page.locator("#case-summary").inner_text() == SUMMARY
    route = page.locator('#clocks tr[data-clock="route"]')
    assert await route.get_attribute("data-state") == "running"
    cells = await route.locator("td").all_inner_texts()
    assert cells[0] == "转送交办（15日）" and cells[3] == "计时中"
    due = date.fromisoformat(cells[2])
    assert received.date() + timedelta(days=15) <= due <= received.date() + timedelta(days=20)
    assert cells[4] == f"剩 {(due - today()).days} 天"
    assert await history_of(desk) == ["registered"]
    await desk.shot("case-registered")

    routing = page.locator("#route-form")
    assert await routing.get_by_label("单位代码").input_value() == COUNTY
    await routing.get_by_label("处理机构").fill("民政")
    await routing.get_by_label("理由").fill("属社会救助事项，交县民政局办理")
    await routing.get_by_role("button", name="转送交办").click()
    await page.locator('#case-state[data-state="routed"]').wait_for()
    assert await page.locator("#case-owner").inner_text() == "枞阳县民政"
    assert await page.locator('#clocks tr[data-clock="route"]').get_attribute("data-state") == "met"
    assert await page.locator("#route-form").count() == 0

    body = await cases_visit()
    await body.sign_in(case_keys["county_civil"])
    await nav_link(body, "待办事项").click()
    row = body.page.locator(f'#cases tr[data-id="{case_id}"]')
    assert "受理告知（15日）" in await row.inner_text()
    await row.get_by_role("link", name="查看与办理").click()
    accepting = body.page.locator("#accept-form")
    await accepting.get_by_label("理由").fill("符合受理条件，已电话告知信访人")
    await accepting.get_by_role("button", name="受理", exact=True).click()
    await body.page.locator('#case-state[data-state="accepted"]').wait_for()

    assert await history_of(body) == ["registered", "routed", "accepted"]
    routed = await body.page.locator('#history tr[data-action="routed"]').inner_text()
    assert "枞阳县登记窗口" in routed and "属社会救助事项，交县民政局办理" in routed
    assert "交办 枞阳县民政" in routed
    accepted = await body.page.locator('#history tr[data-action="accepted"]').inner_text()
    assert "枞阳县民政" in accepted and "符合受理条件，已电话告知信访人" in accepted
    reply = body.page.locator('#clocks tr[data-clock="reply"]')
    assert await reply.get_attribute("data-state") == "running"
    assert await body.page.locator("#reply-form").count() == 1
    await body.shot("case-accepted")


async def test_a_handlers_queue_puts_the_fewest_days_left_first_and_overdue_in_red(
    cases_visit, cases_stack, case_keys
) -> None:
    fresh = await registered(cases_stack, QUEUED, received_at=now() - timedelta(hours=1))
    await routed_to_civil_affairs(cases_stack, fresh, at=now() - timedelta(minutes=30))
    soon = await registered(cases_stack, QUEUED, received_at=now() - timedelta(days=20))
    await routed_to_civil_affairs(cases_stack, soon, at=now() - timedelta(days=14))
    late = await registered(cases_stack, QUEUED, received_at=now() - timedelta(days=30))
    await routed_to_civil_affairs(cases_stack, late, at=now() - timedelta(days=20))

    body = await cases_visit()
    await body.sign_in(case_keys["county_civil"])
    await nav_link(body, "待办事项").click()
    ids = await body.page.locator("#cases tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.id)"
    )
    ours = [fresh["case_id"], soon["case_id"], late["case_id"]]
    assert [i for i in ids if i in ours] == [late["case_id"], soon["case_id"], fresh["case_id"]]
    overdue = body.page.locator(f'#cases tr[data-id="{late["case_id"]}"] td.days-left .bad')
    assert (await overdue.inner_text()).startswith("逾期 ")
    on_time = body.page.locator(f'#cases tr[data-id="{fresh["case_id"]}"] td.days-left')
    assert (await on_time.inner_text()).startswith("剩 ")
    assert await on_time.locator(".bad").count() == 0
    await body.shot("case-queue")


async def test_a_reader_sees_a_case_without_the_petitioners_summary(
    cases_visit, cases_stack, case_keys
) -> None:
    case = await registered(cases_stack, READ, received_at=now() - timedelta(days=1))
    reader = await cases_visit()
    await reader.sign_in(case_keys["county_reader"])
    await nav_link(reader, "信访事项").click()
    await reader.page.locator(f'#cases tr[data-id="{case["case_id"]}"] a').click()
    await reader.page.locator('#case-state[data-state="registered"]').wait_for()
    summary = await reader.page.locator("#case-summary").inner_text()
    assert summary == "（查阅密钥不显示信访人的诉求摘要）"
    assert SUMMARY not in await reader.page.content()
    assert await reader.page.locator("form.record").count() == 0
    await reader.shot("case-read")


async def test_a_refused_step_says_why_in_chinese_and_changes_nothing(
    cases_visit, cases_stack, case_keys
) -> None:
    case = await registered(cases_stack, REFUSED, received_at=now() - timedelta(days=1))
    desk = await cases_visit()
    page = desk.page
    await desk.sign_in(case_keys["county_desk"])
    await desk.goto(f"/cases/{case['case_id']}")

    # 金社镇 has no 民政 of its own.
    routing = page.locator("#route-form")
    await routing.get_by_label("单位代码").fill(TOWNSHIP)
    await routing.get_by_label("处理机构").fill("民政")
    await routing.get_by_role("button", name="转送交办").click()
    error = page.locator("#route-body-error")
    assert await error.inner_text() == "该单位没有这个处理机构（请核对单位代码和机构名称）"
    assert await page.locator("#route-unit_code").input_value() == TOWNSHIP
    assert await page.locator("#case-state").get_attribute("data-state") == "registered"
    assert await history_of(desk) == ["registered"]
    await desk.shot("case-route-refused")

    # A step the case's state does not allow (a form not offered, sent anyway).
    csrf = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    closing = {"csrf_token": csrf, "version": str(case["version"]), "reason": "已处理"}
    await page.evaluate(SEND_FORM, [f"/cases/{case['case_id']}/close", closing])
    await page.locator("#form-error").wait_for()
    refusal = await page.locator("#form-error").inner_text()
    assert refusal == "终结没有办成：" + CONFLICT
    assert await history_of(desk) == ["registered"]

    # The routing sent twice: the second finds the case changed and says so.
    await page.locator("#route-unit_code").fill(COUNTY)
    await page.locator("#route-body").fill("民政")
    sent = await page.evaluate(ROUTE_FORM)
    await page.locator("#route-form").get_by_role("button", name="转送交办").click()
    await page.locator('#case-state[data-state="routed"]').wait_for()
    await page.evaluate(SEND_FORM, [f"/cases/{case['case_id']}/route", sent])
    await page.locator("#notice").wait_for()
    assert "已经更新过" in await page.locator("#notice").inner_text()
    assert await history_of(desk) == ["registered", "routed"]


async def test_the_county_bureau_supervises_an_overdue_case(
    cases_visit, cases_stack, case_keys
) -> None:
    case = await registered(cases_stack, OVERDUE, received_at=now() - timedelta(days=40))
    bureau = await cases_visit()
    await bureau.sign_in(case_keys["county_bureau"])
    await nav_link(bureau, "逾期督办").click()
    row = bureau.page.locator(f'#overdue tr[data-id="{case["case_id"]}"]')
    assert "转送交办（15日）" in await row.inner_text()
    assert "逾期" in await row.locator(".bad").first.inner_text()
    await row.get_by_label("督办意见").fill("请于三日内转送交办并报告")
    await row.get_by_role("button", name="督办").click()
    await bureau.page.wait_for_url("**/cases/overdue")
    await bureau.shot("cases-overdue")

    await bureau.goto(f"/cases/{case['case_id']}")
    assert await history_of(bureau) == ["registered", "supervised"]
    supervised = await bureau.page.locator('#history tr[data-action="supervised"]').inner_text()
    assert "枞阳县信访局" in supervised and "请于三日内转送交办并报告" in supervised
    assert "逾期：转送交办（15日）" in supervised


async def test_a_reader_reads_the_case_rates_of_its_county_and_its_townships(
    cases_visit, cases_stack, case_keys
) -> None:
    """The same petitioner and matter registered twice: a repeat, in 重复信访率 of 金社镇."""
    first = await registered(
        cases_stack, REPEATED, received_at=now() - timedelta(days=3), petitioner_ref="张三-1"
    )
    again = await registered(
        cases_stack, REPEATED, received_at=now() - timedelta(days=1), petitioner_ref="张三-1"
    )
    assert again["repeat_of"] == first["case_id"]

    reader = await cases_visit()
    await reader.sign_in(case_keys["county_reader"])
    await nav_link(reader, "事项办理率").click()
    await reader.page.locator("#period").select_option("rolling")
    await reader.page.get_by_role("button", name="查看").click()
    await reader.page.wait_for_url("**period=rolling*")
    names = await reader.page.locator("#rates tbody th").all_inner_texts()
    assert names == ["及时受理率", "按期办结率", "参评率", "满意率", "重复信访率"]
    repeat = await reader.page.locator('#rates tr[data-rate="repeat"] td').all_inner_texts()
    assert repeat[1].startswith("1 / ") and int(repeat[1].split(" / ")[1]) >= 2
    township = reader.page.locator(f'#rate-children tr[data-code="{TOWNSHIP}"]')
    cells = await township.locator("td").all_inner_texts()
    assert cells[0] == "金社镇" and cells[5].split()[1].startswith("1/")
    await reader.shot("case-rates")


async def test_the_overview_shows_the_county_case_rates_beside_the_three_no_figures(
    cases_visit, cases_stack, case_keys
) -> None:
    await registered(cases_stack, REPEATED, received_at=now() - timedelta(days=2))
    reader = await cases_visit()
    await reader.sign_in(case_keys["county_reader"])
    await reader.goto(f"/overview?unit={COUNTY}&period=rolling")
    section = reader.page.locator("#case-rates")
    names = await section.locator("dt").all_inner_texts()
    assert names == ["及时受理率", "按期办结率", "参评率", "满意率", "重复信访率"]
    shown = await section.locator('[data-rate="repeat"] .small').inner_text()
    await reader.shot("overview-case-rates")

    await section.get_by_role("link", name="各下级单位的办理率").click()
    await reader.page.wait_for_url("**/cases/rates?*period=rolling*")
    repeat = await reader.page.locator('#rates tr[data-rate="repeat"] td').all_inner_texts()
    registrations = int(repeat[1].split(" / ")[1])
    assert registrations >= 1
    assert shown.split("，")[0] == repeat[1].replace(" ", "")


async def accepted_by_civil_affairs(
    cases_stack, case: dict[str, Any], keys: dict[str, str]
) -> None:
    """Routed to the county's 民政 and accepted by it, through the API."""
    await routed_to_civil_affairs(cases_stack, case, at=now() - timedelta(minutes=10))
    body = {"reason": "予以受理", "notified_at": now().isoformat()}
    async with httpx.AsyncClient(base_url=cases_stack.urls["cases"]) as cases:
        response = await cases.post(
            f"/v1/cases/{case['case_id']}/accept",
            json=body,
            headers=bearer(keys["county_civil"]) | {"If-Match": f'"{case["version"] + 1}"'},
        )
    assert response.status_code == 200, response.text


async def test_the_body_extends_and_replies_the_desk_records_the_rating_and_the_city_reviews(
    cases_visit, cases_stack, case_keys
) -> None:
    case = await registered(cases_stack, REVIEWED, received_at=now() - timedelta(days=2))
    await accepted_by_civil_affairs(cases_stack, case, case_keys)
    case_page = f"/cases/{case['case_id']}"

    body = await cases_visit()
    page = body.page
    await body.sign_in(case_keys["county_civil"])
    await body.goto(case_page)
    due = await page.locator('#clocks tr[data-clock="reply"] td').nth(2).inner_text()
    await page.locator("#extend-days").fill("40")
    await page.locator("#extend-reason").fill("需会同乡镇核实家庭收入")
    await page.locator("#extend-form button").click()
    assert await page.locator("#extend-days-error").inner_text() == "延长天数应为 1 至 30 天"
    await page.locator("#extend-days").fill("20")
    await page.locator("#extend-form button").click()
    await page.locator('#history tr[data-action="extended"]').wait_for()
    extended = await page.locator('#clocks tr[data-clock="reply"] td').nth(2).inner_text()
    assert date.fromisoformat(extended) >= date.fromisoformat(due) + timedelta(days=20)
    assert await page.locator("#extend-form").count() == 0  # once only

    await page.locator("#reply-outcome").select_option("support")
    await page.locator("#reply-text").fill("经核实符合低保条件，予以纳入")
    await page.locator("#reply-form button").click()
    await page.locator('#case-state[data-state="replied"]').wait_for()
    assert "支持" in await page.locator('#history tr[data-action="replied"]').inner_text()

    desk = await cases_visit()
    await desk.sign_in(case_keys["county_desk"])
    await desk.goto(case_page)
    await desk.page.locator("#rate-rating").select_option("basically_satisfied")
    await desk.page.locator("#rate-form button").click()
    await desk.page.locator("#case-rating").wait_for()
    assert await desk.page.locator("#case-rating").inner_text() == "基本满意"
    await desk.page.locator("#review-request-reason").fill("信访人要求复查补发金额")
    await desk.page.locator("#review-request-form button").click()
    await desk.page.locator('#case-state[data-state="review_requested"]').wait_for()
    asked = await desk.page.locator('#history tr[data-action="review_requested"]').inner_text()
    assert "复查：铜陵市信访局" in asked

    city = await cases_visit()
    await city.sign_in(case_keys["city_bureau"])
    await city.goto(case_page)
    await city.page.locator("#review-outcome").select_option("explain")
    await city.page.locator("#review-text").fill("原答复正确，补发金额依规计算")
    await city.page.locator("#review-form button").click()
    await city.page.locator('#case-state[data-state="replied"]').wait_for()
    assert await history_of(city) == [
        "registered",
        "routed",
        "accepted",
        "extended",
        "replied",
        "rated",
        "review_requested",
        "reviewed",
    ]
    reviewed = await city.page.locator('#history tr[data-action="reviewed"]').inner_text()
    assert "铜陵市信访局" in reviewed and "复查：解释说明" in reviewed
    # The window to ask for 复核 runs: the case may not be closed yet.
    assert await city.page.locator("#close-form").count() == 0
    await city.shot("case-reviewed")


async def test_a_declined_case_is_closed_by_the_petitioners_desk(
    cases_visit, cases_stack, case_keys
) -> None:
    case = await registered(cases_stack, CLOSED, received_at=now() - timedelta(days=1))
    await routed_to_civil_affairs(cases_stack, case, at=now() - timedelta(minutes=10))
    body = await cases_visit()
    await body.sign_in(case_keys["county_civil"])
    await body.goto(f"/cases/{case['case_id']}")
    await body.page.locator("#decline-reason").fill("属劳动争议，应申请劳动仲裁")
    await body.page.locator("#decline-proper_channel").fill("劳动人事争议仲裁")
    await body.page.locator("#decline-form button").click()
    await body.page.locator('#case-state[data-state="declined"]').wait_for()
    declined = await body.page.locator('#history tr[data-action="declined"]').inner_text()
    assert "应走途径：劳动人事争议仲裁" in declined

    desk = await cases_visit()
    await desk.sign_in(case_keys["county_desk"])
    await desk.goto(f"/cases/{case['case_id']}")
    await desk.page.locator("#close-form button").click()
    await desk.page.locator('#case-state[data-state="closed"]').wait_for()
    assert await desk.page.locator("form.record").count() == 0
