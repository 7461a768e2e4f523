"""Sign-in through a real Keycloak's login page, in a real Chromium: a county bureau's person
lands on the county's overview, cannot open a unit outside the county, and signs out of the
console and of Keycloak; a person whose account lacks the claims is refused, in Chinese. The
console runs as a process of its own beside the console stack's, configured for the Keycloak of
tests/support/keycloak.py."""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.async_api import Browser

from shared.db import Database
from tests.console.conftest import CITY, LOOPBACK, Visit
from tests.support.console import ConsoleStack
from tests.support.keycloak import (
    ADMIN_CLAIM,
    COUNTY_BUREAU,
    NO_CLAIMS,
    PASSWORD,
    Keycloak,
    keycloak,  # noqa: F401  (the session's Keycloak)
)
from tests.support.processes import Supervisor, free_port, uvicorn, wait_healthy


@pytest.fixture(scope="module")
def oidc_console(
    console_stack: ConsoleStack,
    keycloak: Keycloak,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The URL of a console that signs people in through the Keycloak, in front of the console
    stack's services."""
    port = free_port()
    supervisor = Supervisor(
        env=console_stack.env | keycloak.console_env(),
        log_dir=tmp_path_factory.mktemp("oidc-console"),
    )
    supervisor.add("console", uvicorn("services.console.main:create_app", port))
    try:
        supervisor.start_all()
        popen = supervisor.processes["console"].popen
        assert popen is not None
        wait_healthy(f"http://127.0.0.1:{port}/healthz", popen, timeout=120)
        yield f"http://127.0.0.1:{port}"
    finally:
        supervisor.stop_all()


@pytest.fixture
async def tab(
    browser: Browser, oidc_console: str, screenshots: Path
) -> AsyncIterator[Callable[[], Awaitable[Visit]]]:
    """Opens tabs on that console, each with cookies of its own; afterwards, no request of any
    left the machine and no page's content security policy refused what it asked for."""
    opened: list[Visit] = []
    contexts = []

    async def open_tab() -> Visit:
        context = await browser.new_context(locale="zh-CN")
        contexts.append(context)
        opened.append(
            Visit(await context.new_page(), base_url=oidc_console, screenshots=screenshots)
        )
        return opened[-1]

    yield open_tab
    for context in contexts:
        await context.close()
    for visit in opened:
        assert visit.hosts <= LOOPBACK, f"the browser left the machine: {visit.hosts}"
        assert not visit.refused, f"the content security policy refused: {visit.refused}"


async def through_keycloak(visit: Visit, keycloak: Keycloak, *, username: str) -> None:  # noqa: F811
    page = visit.page
    await visit.goto("/signin")
    await page.get_by_role("link", name="统一身份认证登录").click()
    await page.wait_for_url(f"{keycloak.issuer}/**")
    await page.locator("#username").fill(username)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#kc-login").click()
    await page.wait_for_url(lambda url: url.startswith(visit.base_url))


async def minted_keys_of(db: Database, subject_name: str) -> list[dict]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.text("SELECT role, scope_code, revoked_at FROM access.api_keys WHERE label = :l"),
            {"l": f"console sign-in of {subject_name}"},
        )
        return [dict(row._mapping) for row in rows]


async def test_a_county_bureau_signs_in_through_keycloak_stays_in_its_county_and_signs_out(
    tab,
    keycloak: Keycloak,  # noqa: F811
    db: Database,
) -> None:
    visit = await tab()
    page = visit.page
    await visit.goto("/signin")
    await visit.shot("oidc-signin-page")
    await through_keycloak(visit, keycloak, username=COUNTY_BUREAU)

    await page.wait_for_url("**/overview**")
    await page.get_by_role("heading", level=1, name="枞阳县").wait_for()
    await visit.shot("oidc-county-overview")
    [key] = await minted_keys_of(db, "县信访局 枞阳")
    assert (key["role"], key["scope_code"], key["revoked_at"]) == ("bureau", "340722000000", None)

    response = await page.goto(f"{visit.base_url}/overview?unit={CITY}")
    assert response is not None and response.status == 403
    await page.get_by_role("heading", name="无权查看").wait_for()
    await visit.shot("oidc-outside-the-county")

    await visit.goto("/overview")
    await page.get_by_role("button", name="退出").click()
    await page.wait_for_url("**/signin?notice=signed_out")
    await page.get_by_text("已退出。").wait_for()
    [key] = await minted_keys_of(db, "县信访局 枞阳")
    assert key["revoked_at"] is not None

    # Keycloak's session ended too: signing in again asks for the password again.
    await page.get_by_role("link", name="统一身份认证登录").click()
    await page.wait_for_url(f"{keycloak.issuer}/**")
    await page.locator("#password").wait_for()
    await visit.shot("oidc-signed-out-of-keycloak")


@pytest.mark.parametrize("username", [NO_CLAIMS, ADMIN_CLAIM])
async def test_a_person_without_the_claims_is_refused_with_a_page_in_chinese(
    tab,
    keycloak: Keycloak,  # noqa: F811
    username: str,
) -> None:
    visit = await tab()
    await through_keycloak(visit, keycloak, username=username)
    page = visit.page
    await page.get_by_role("heading", name="无法登录").wait_for()
    assert "没有配置本系统可用的角色和所属单位" in await page.content()
    assert "/signin/oidc/callback" in page.url
    await visit.shot(f"oidc-refused-{username}")
    overview = await page.goto(f"{visit.base_url}/overview")
    assert overview is not None and "/signin" in page.url  # no session was opened
