"""Every page of the console, for every role that may see it, checked by axe-core in a real
Chromium (GB/T 37668-2019, WCAG 2.0 AA in substance): nothing serious or critical. axe is
injected into each page, so these tabs are opened with the pages' content security policy set
aside; every other console test keeps it."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

import httpx
import pytest
from playwright.async_api import Browser, Page

from shared.access.models import Role
from shared.campaign import SHANGHAI
from tests.support import applications, events
from tests.support.app import bearer
from tests.support.axe import described, violations
from tests.support.cases import dispute
from tests.support.console import new_key
from tests.support.waiting import wait_until

# 官埠桥镇 and villages of it no other console test uses.
TOWNSHIP = "340722108000"
VISITED = "340722108201"  # 竹石圩村: a collective visit, disputed
APPLIED = "340722108202"  # 龙湖庄村: in an application
CASE_AT = "340722108203"  # 河湖庄村: a case registered


async def sign_in(page: Page, base_url: str, key: str) -> None:
    await page.goto(base_url + "/signin")
    await page.get_by_label("接口密钥").fill(key)
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url(lambda url: "/signin" not in url)


@pytest.fixture
async def axe_tab(
    browser: Browser, cases_stack
) -> AsyncIterator[Callable[[str | None], Awaitable[Page]]]:
    """Opens a tab signed in with the key (None: signed out) in which axe may run."""
    contexts = []

    async def open_tab(key: str | None) -> Page:
        context = await browser.new_context(
            viewport={"width": 1366, "height": 768}, locale="zh-CN", bypass_csp=True
        )
        contexts.append(context)
        page = await context.new_page()
        if key is not None:
            await sign_in(page, cases_stack.console_url, key)
        return page

    yield open_tab
    for context in contexts:
        await context.close()


async def filed_dispute(cases_stack, event_id: str) -> str:
    key = cases_stack.keys["county_desk"]
    body = dispute(event_id)
    async with httpx.AsyncClient(base_url=cases_stack.urls["cases"]) as cases:

        async def filed() -> bool:
            response = await cases.post("/v1/disputes", json=body, headers=bearer(key))
            if response.status_code == 404:
                return False
            assert response.status_code in (200, 201), response.text
            return True

        await wait_until(filed, timeout=30, message="the cases service to read the event")
    return str(body["dispute_id"])


@pytest.fixture(scope="module")
async def records(cases_stack, case_keys) -> dict[str, str]:
    """An event with its dispute, an application and a case, for their pages."""
    desk = cases_stack.keys["county_desk"]
    event = events.visit(
        VISITED, destination="city", headcount=6, occurred_at="2018-05-04T10:00:00+08:00"
    )
    async with httpx.AsyncClient(base_url=cases_stack.urls["intake"]) as intake:
        response = await intake.post("/v1/events", json=event, headers=bearer(desk))
    assert response.status_code == 202, response.text
    async with httpx.AsyncClient(base_url=cases_stack.urls["applications"]) as client:
        created = await applications.create(
            client, cases_stack.keys["county_bureau"], period="2018", codes=(APPLIED,)
        )
    assert created.status_code == 201, created.text
    registration = {
        "case_id": str(uuid.uuid4()),
        "unit_code": CASE_AT,
        "received_at": datetime.now(SHANGHAI).isoformat(),
        "channel": "letter",
        "category": "社会救助",
        "petitioner_ref": f"ref-{uuid.uuid4()}",
        "headcount": 1,
        "summary": "低保申请三个月未获答复",
    }
    async with httpx.AsyncClient(base_url=cases_stack.urls["cases"]) as cases:
        registered = await cases.post("/v1/cases", json=registration, headers=bearer(desk))
    assert registered.status_code in (200, 201), registered.text
    return {
        "event": str(event["event_id"]),
        "dispute": await filed_dispute(cases_stack, str(event["event_id"])),
        "application": str(created.json()["application_id"]),
        "case": str(registration["case_id"]),
    }


READER_PAGES = [
    "/overview",
    f"/overview?unit={TOWNSHIP}&period=2018",
    "/search?q=官埠桥",
    f"/units/{VISITED}?period=2018",
    "/events/{event}",
    "/eligible?period=2018",
    "/warnings",
    "/trends",
    f"/trends?unit={TOWNSHIP}",
    "/cases",
    "/cases/{case}",
    "/cases/rates",
    "/units/340722999999",  # the error page
]
DESK_PAGES = [
    "/record",
    "/record?type=incident",
    "/record?type=screening_meeting",
    "/record/{event}",
    "/events/{event}",
    "/disputes",
    "/disputes/{dispute}",
    "/cases/new",
    "/cases",
    "/cases/{case}",
]
BUREAU_PAGES = [
    "/overview",
    "/applications?period=2018",
    "/applications/new?period=2018",
    "/applications/{application}",
    "/disputes",
    "/disputes/{dispute}",
    "/cases",
    "/cases/{case}",
    "/cases/overdue",
    "/cases/rates",
    "/trends",
    "/eligible?period=2018",
]
ADMIN_PAGES = ["/overview", "/record", "/trends", "/applications?period=2018", "/cases"]


async def checked(page: Page, url: str) -> list[str]:
    await page.goto(url)
    found = await violations(page)
    return [f"{url}\n{described(found)}"] if found else []


@pytest.mark.parametrize(
    ("role", "pages"),
    [
        ("county_reader", READER_PAGES),
        ("county_desk", DESK_PAGES),
        ("county_bureau", BUREAU_PAGES),
    ],
)
async def test_no_page_has_a_serious_or_critical_violation(
    axe_tab, cases_stack, records, role: str, pages: list[str]
) -> None:
    page = await axe_tab(cases_stack.keys[role])
    failures: list[str] = []
    for path in pages:
        failures += await checked(page, cases_stack.console_url + path.format(**records))
    assert not failures, "\n\n".join(failures)


async def test_an_admins_and_a_handlers_pages_have_none_either(
    axe_tab, cases_stack, case_keys, db
) -> None:
    admin = await axe_tab(await new_key(db, Role.admin, scope=None))  # type: ignore[arg-type]
    failures: list[str] = []
    for path in ADMIN_PAGES:
        failures += await checked(admin, cases_stack.console_url + path)
    handler = await axe_tab(case_keys["county_civil"])
    failures += await checked(handler, cases_stack.console_url + "/cases")
    assert not failures, "\n\n".join(failures)


async def test_the_sign_in_page_and_a_refused_form_have_none(axe_tab, cases_stack) -> None:
    signed_out = await axe_tab(None)
    failures = await checked(signed_out, cases_stack.console_url + "/signin")
    failures += await checked(signed_out, cases_stack.console_url + "/no-such-page")
    desk = await axe_tab(cases_stack.keys["county_desk"])
    await desk.goto(cases_stack.console_url + "/record")
    await desk.get_by_role("button", name="登记").click()  # everything missing
    await desk.locator(".field-error").first.wait_for()
    found = await violations(desk)
    failures += [f"/record refused\n{described(found)}"] if found else []
    assert not failures, "\n\n".join(failures)


async def test_the_check_finds_a_violation_when_there_is_one(axe_tab, cases_stack) -> None:
    page = await axe_tab(None)
    await page.goto(cases_stack.console_url + "/signin")
    await page.evaluate(
        "() => { const i = document.createElement('input'); i.type = 'text';"
        " document.querySelector('main').appendChild(i); }"
    )
    assert "label" in {v["id"] for v in await violations(page)}
