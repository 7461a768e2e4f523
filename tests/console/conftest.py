"""The console tests: the five services and the console as real processes (tests/support/
console.py), a real headless Chromium (Debian's package, launched by Playwright, which never
downloads a browser of its own), and screenshots of what each test checks, under
tests/console/screenshots/ (emptied at the start of each run)."""

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Request, async_playwright

from services.console.main import create_app
from shared.access import service as access_service
from shared.access.models import Role
from shared.campaign import SHANGHAI, system_now
from shared.db import Database
from shared.registry.bodies import BodyRepository, load_bodies
from tests.conftest import COUNTY, DEMO_UNITS, SIBLING_TOWNSHIP, TOWNSHIP
from tests.support.app import serve
from tests.support.cases import DEMO_BODIES, years_covered
from tests.support.console import Clock, ConsoleStack, running_console
from tests.support.stack import IsolatedStack

CITY = "340700000000"
PROVINCE = "340000000000"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_INSTALLED = CHROMIUM.exists()
SCREENSHOTS = Path(__file__).parent / "screenshots"
KEYS = {
    "county_reader": (Role.reader, COUNTY),
    "county_desk": (Role.desk, COUNTY),
    "township_reader": (Role.reader, TOWNSHIP),
    "sibling_desk": (Role.desk, SIBLING_TOWNSHIP),
    "county_bureau": (Role.bureau, COUNTY),
    "city_bureau": (Role.bureau, CITY),
    "province_bureau": (Role.bureau, PROVINCE),
}
LOOPBACK = {"127.0.0.1", "localhost"}


@pytest.fixture(scope="package")
async def console_stack(
    stack: IsolatedStack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ConsoleStack]:
    async with running_console(
        registry=[DEMO_UNITS], keys=KEYS, log_dir=tmp_path_factory.mktemp("console-logs")
    ) as running:
        yield running


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def console(console_stack: ConsoleStack, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    """A console run in-process, its clock in the test's hands, in front of the real services."""
    app = create_app(console_stack.console_settings(), clock=clock)
    async with serve(app, "http://console") as client:
        yield client


@pytest.fixture
async def db(console_stack: ConsoleStack) -> AsyncIterator[Database]:
    """The console stack's database."""
    database = Database.from_settings(console_stack.settings, pool_size=1)
    yield database
    await database.dispose()


@pytest.fixture(scope="package")
def screenshots() -> Path:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM_INSTALLED:
        pytest.fail("Debian's chromium is not installed (deploy/install-system.sh installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        await launched.close()


class Visit:
    """A browser tab on the console that remembers every request it made, and everything the
    page's content security policy refused."""

    def __init__(self, page: Page, *, base_url: str, screenshots: Path) -> None:
        self.page = page
        self.base_url = base_url
        self.screenshots = screenshots
        self.hosts: set[str] = set()
        self.refused: list[str] = []
        page.on("request", self._seen)
        page.on("console", self._logged)

    def _seen(self, request: Request) -> None:
        self.hosts.add(urlsplit(request.url).hostname or request.url)

    def _logged(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.refused.append(message.text)

    async def goto(self, path: str) -> None:
        await self.page.goto(self.base_url + path)

    async def sign_in(self, key: str) -> None:
        await self.goto("/signin")
        await self.page.get_by_label("接口密钥").fill(key)
        await self.page.get_by_role("button", name="登录").click()
        await self.page.wait_for_url(lambda url: "/signin" not in url)

    async def shot(self, name: str) -> Path:
        """A screenshot of the page as it stands; the page must show no stack trace."""
        content = await self.page.content()
        assert "Traceback" not in content and 'File "/' not in content
        path = self.screenshots / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
async def visit(
    browser: Browser, console_stack: ConsoleStack, screenshots: Path
) -> AsyncIterator[Callable[..., Awaitable[Visit]]]:
    """Opens tabs, each in a context of its own (its own cookies); afterwards, every request
    any of them made went to the loopback address, and the pages' content security policy
    refused nothing they asked for."""
    opened: list[Visit] = []
    contexts = []

    async def open_tab(*, width: int = 1366, height: int = 768) -> Visit:
        context = await browser.new_context(
            viewport={"width": width, "height": height}, locale="zh-CN"
        )
        contexts.append(context)
        tab = Visit(
            await context.new_page(), base_url=console_stack.console_url, screenshots=screenshots
        )
        opened.append(tab)
        return tab

    yield open_tab
    for context in contexts:
        await context.close()
    for tab in opened:
        assert tab.hosts <= LOOPBACK, f"the browser left the machine: {tab.hosts}"
        assert not tab.refused, f"the content security policy refused: {tab.refused}"


# --- the cases service beside the stack, for the 异议 pages -------------------------------------


@pytest.fixture(scope="package")
async def cases_stack(
    console_stack: ConsoleStack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ConsoleStack]:
    """The console stack (its console calls its cases service) with the calendar covering the
    dispute windows of events accepted now: this year and the next (loaded as test data when
    the holiday package does not have it yet)."""
    database = Database.from_settings(console_stack.settings, pool_size=1)
    this_year = system_now().astimezone(SHANGHAI).year
    try:
        async with years_covered(
            database,
            {this_year, this_year + 1},
            tmp_path_factory.mktemp("calendar"),
            database_url=console_stack.settings.database_url,
        ):
            yield console_stack
    finally:
        await database.dispose()


@pytest.fixture
def cases_visit(
    visit: Callable[..., Awaitable[Visit]], cases_stack: ConsoleStack
) -> Callable[..., Awaitable[Visit]]:
    """Tabs as `visit` opens them, once the calendar covers the dispute windows."""
    return visit


@pytest.fixture(scope="package")
async def case_keys(cases_stack: ConsoleStack) -> dict[str, str]:
    """The stack's keys, with the demo bodies loaded (as an operator would) and a key of the
    county's 民政 (a handling body) for the 信访事项 pages."""
    database = Database.from_settings(cases_stack.settings, pool_size=1)
    try:
        async with database.engine.begin() as connection:
            await load_bodies(await BodyRepository.from_connection(connection), DEMO_BODIES)
            handler = await access_service.create(
                connection, role=Role.handler, scope_code=COUNTY, body="民政"
            )
    finally:
        await database.dispose()
    return cases_stack.keys | {"county_civil": handler}
