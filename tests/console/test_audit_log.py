"""The audit log's part of an event's and an application's page: once the audit service has
appended a record and signed a checkpoint over it, the page shows the record's leaf index and
that checkpoint (real services, in a real Chromium); before that, that it is not in the log or
not covered yet (a log answered by hand); and a log that is down or too slow leaves the rest of
the page as it is, saying only 审计日志暂不可用."""

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from services.applications.history import record_step
from services.applications.workflow import Action, UnitState
from services.console.main import create_app
from shared.access.models import Role
from shared.access.service import Principal
from shared.campaign import system_now
from shared.db import Database
from tests.conftest import COUNTY
from tests.support import events
from tests.support.app import bearer, serve
from tests.support.audit import listening
from tests.support.console import HAND_ROOT, Clock, ConsoleStack, HandAnsweredLog, sign_in
from tests.support.dynamic import put_application
from tests.support.processes import free_port
from tests.support.waiting import poll

# Villages of 项铺镇 no other console test posts for or applies with.
EVENT_VILLAGE = "340722104201"  # 上柳墩村
APPLIED_VILLAGE = "340722104202"  # 桃李冲村
EVENT_STATE = re.compile(r'id="audit-log" data-state="(\w+)">')


@pytest.fixture(scope="module")
async def recorded(console_stack: ConsoleStack) -> str:
    """An event accepted by intake that counts against nobody (one person, to the township)."""
    event = events.visit(EVENT_VILLAGE, destination="township", headcount=1)
    async with httpx.AsyncClient(base_url=console_stack.urls["intake"]) as intake:
        response = await intake.post(
            "/v1/events", json=event, headers=bearer(console_stack.keys["county_desk"])
        )
    assert response.status_code in (200, 201, 202), response.text
    return str(event["event_id"])


@pytest.fixture(scope="module")
async def applied(console_stack: ConsoleStack) -> tuple[str, list[int]]:
    """An application with two steps (created, then its unit returned by the city), recorded
    and published as the applications service does: its id and its steps' ids."""
    db = Database.from_settings(console_stack.settings, pool_size=1)
    try:
        application_id = await put_application(
            db, period="2018", units={APPLIED_VILLAGE: UnitState.submitted}, county=COUNTY
        )
        city = Principal(key_id="c1d2e3f4a5b6", role=Role.bureau, scope_code="340700000000")
        async with db.session() as session:
            await record_step(
                session,
                application_id=application_id,
                action=Action.returned,
                at=system_now(),
                unit_code=APPLIED_VILLAGE,
                principal=city,
                reason="例会记录不全",
            )
    finally:
        await db.dispose()
    async with httpx.AsyncClient(base_url=console_stack.urls["applications"]) as applications:
        response = await applications.get(
            f"/v1/applications/{application_id}/history",
            headers=bearer(console_stack.keys["county_bureau"]),
        )
    assert response.status_code == 200, response.text
    return str(application_id), [step["step_id"] for step in response.json()["items"]]


# --- the real log, in a real browser -------------------------------------------------------------


class RealLog:
    """The console stack's audit service, read with a key, as the test's own witness."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def index_of(self, kind: str, record_id: str | int) -> int:
        """The leaf's index once the log holds it; the leaf at that index is the record's."""

        async def found() -> int | None:
            response = await self.client.get(f"/v1/log/leaf/{kind}/{record_id}")
            return response.json()["index"] + 1 if response.status_code == 200 else None

        index = await poll(found, timeout=30, message=f"{kind} {record_id} in the log") - 1
        entries = await self.client.get(
            "/v1/log/entries", params={"start": index, "end": index + 1}
        )
        leaf = json.loads(entries.json()["entries"][0]["leaf"])
        assert (leaf["kind"], leaf["id"]) == (kind, str(record_id))
        return index

    async def checkpoint(self, *, covering: int = 0) -> dict[str, Any]:
        """The latest checkpoint, once it covers the leaf at index `covering`."""

        async def latest() -> dict[str, Any] | None:
            response = await self.client.get("/v1/log/checkpoint")
            found: dict[str, Any] = response.json() if response.status_code == 200 else {}
            return found if found.get("size", 0) > covering else None

        return await poll(latest, timeout=30, message=f"a checkpoint over leaf {covering}")


@pytest.fixture
async def real_log(console_stack: ConsoleStack) -> AsyncIterator[RealLog]:
    key = console_stack.keys["county_reader"]
    async with httpx.AsyncClient(
        base_url=console_stack.urls["audit"], headers=bearer(key), timeout=10
    ) as client:
        yield RealLog(client)


async def shown_with_checkpoint(tab, real_log: RealLog, path: str, *, covering: int) -> dict:
    """The page loaded until the checkpoint it shows is the log's latest (a key operation may
    be appended meanwhile); returns that checkpoint."""

    async def loaded() -> dict[str, Any] | None:
        await real_log.checkpoint(covering=covering)
        await tab.goto(path)
        shown = await tab.page.locator("#audit-log .mono").get_attribute("title", timeout=5000)
        latest = await real_log.checkpoint(covering=covering)
        return latest if shown == latest["root_hash"] else None

    return await poll(loaded, timeout=30, message=f"{path} to show the latest checkpoint")


async def test_an_event_and_an_application_show_their_leaves_and_the_checkpoint_over_them(
    visit, console_stack, real_log: RealLog, recorded: str, applied: tuple[str, list[int]]
) -> None:
    event_index = await real_log.index_of("event", recorded)
    application_id, step_ids = applied
    step_indexes = {step: await real_log.index_of("application_step", step) for step in step_ids}
    tab = await visit()
    await tab.sign_in(console_stack.keys["county_bureau"])

    checkpoint = await shown_with_checkpoint(
        tab, real_log, f"/events/{recorded}", covering=event_index
    )
    section = tab.page.locator("#audit-log")
    assert await section.get_attribute("data-state") == "covered"
    assert await section.locator(".leaf-index").inner_text() == str(event_index)
    text = await section.inner_text()
    assert f"已由检查点（规模 {checkpoint['size']}，" in text
    assert checkpoint["root_hash"][:12] + "…" in text
    assert "评定结果" in await tab.page.content()  # the rest of the event as before
    await tab.shot("event-in-log")

    checkpoint = await shown_with_checkpoint(
        tab, real_log, f"/applications/{application_id}", covering=max(step_indexes.values())
    )
    assert f"规模 {checkpoint['size']}，" in await tab.page.locator("#audit-log").inner_text()
    for step, index in step_indexes.items():
        cell = tab.page.locator(f'#history tr[data-step="{step}"] td.in-log')
        assert await cell.get_attribute("data-state") == "covered"
        assert await cell.locator(".leaf-index").inner_text() == str(index)
    await tab.shot("application-in-log")


# --- a log answered by hand, in-process ----------------------------------------------------------


@pytest.fixture(scope="module")
async def hand_log() -> AsyncIterator[tuple[HandAnsweredLog, str]]:
    log = HandAnsweredLog()
    async with listening(log.app()) as url:
        yield log, url
        log.released.set()


@asynccontextmanager
async def console_before(
    console_stack: ConsoleStack, audit_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A console in-process reading the log at `audit_url` (within 0.3 s), signed in with the
    county bureau's key."""
    settings = console_stack.console_settings(
        audit_url=audit_url, console_audit_timeout_seconds=0.3
    )
    async with serve(create_app(settings, clock=Clock()), "http://console") as client:
        assert (await sign_in(client, console_stack.keys["county_bureau"])).status_code == 303
        yield client


@pytest.fixture(scope="module")
async def by_hand(
    console_stack: ConsoleStack, hand_log: tuple[HandAnsweredLog, str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with console_before(console_stack, hand_log[1]) as client:
        yield client


@pytest.fixture
def log(hand_log: tuple[HandAnsweredLog, str]) -> HandAnsweredLog:
    found = hand_log[0]
    found.indexes, found.size, found.stalled = {}, None, False
    return found


def event_section(page: httpx.Response) -> tuple[str, str]:
    """The event page's audit state, and the section's text without its markup."""
    assert page.status_code == 200, page.text
    state = EVENT_STATE.search(page.text)
    assert state is not None
    section = page.text[state.end() : page.text.index("</dd>", state.end())]
    return state.group(1), re.sub(r"<[^>]+>|\s+", "", section)


@pytest.mark.parametrize(
    ("index", "size", "state", "says"),
    [
        (None, 9, "absent", "尚未写入审计日志"),
        (5, 5, "uncovered", "已写入审计日志：叶子序号5，尚未被检查点覆盖（最新检查点规模5）"),
        (5, None, "uncovered", "已写入审计日志：叶子序号5，尚未被检查点覆盖"),
        (
            4,
            5,
            "covered",
            f"叶子序号4，已由检查点（规模5，时间2026-12-0310:04，根哈希{HAND_ROOT[:12]}…）覆盖",
        ),
    ],
)
async def test_an_event_not_yet_in_the_log_or_not_yet_covered_says_so(
    by_hand: httpx.AsyncClient,
    log: HandAnsweredLog,
    recorded: str,
    index: int | None,
    size: int | None,
    state: str,
    says: str,
) -> None:
    log.indexes = {} if index is None else {recorded: index}
    log.size = size

    shown_state, text = event_section(await by_hand.get(f"/events/{recorded}"))

    assert shown_state == state
    assert says in text


async def test_each_application_step_shows_its_own_place_in_the_log(
    by_hand: httpx.AsyncClient, log: HandAnsweredLog, applied: tuple[str, list[int]]
) -> None:
    application_id, (created, returned) = applied
    log.indexes, log.size = {str(created): 3}, 4

    page = await by_hand.get(f"/applications/{application_id}")

    assert page.status_code == 200, page.text
    cells = dict(
        re.findall(r'data-step="(\d+)">.*?class="in-log small" data-state="(\w+)"', page.text, re.S)
    )
    assert cells == {str(created): "covered", str(returned): "absent"}
    assert 'data-available="yes"' in page.text and "规模 4，" in page.text


async def test_the_pages_are_shown_without_a_log_that_does_not_answer_in_time(
    by_hand: httpx.AsyncClient,
    log: HandAnsweredLog,
    recorded: str,
    applied: tuple[str, list[int]],
) -> None:
    log.indexes, log.size, log.stalled = {recorded: 1}, 2, True

    state, text = event_section(await by_hand.get(f"/events/{recorded}"))
    application = await by_hand.get(f"/applications/{applied[0]}")

    assert (state, text) == ("unavailable", "审计日志暂不可用")
    assert application.status_code == 200
    assert 'data-available="no"' in application.text and "审计日志暂不可用" in application.text
    assert application.text.count('data-state="unavailable"') == len(applied[1])
    assert f'data-code="{APPLIED_VILLAGE}"' in application.text  # the units, as before


async def test_the_pages_are_shown_with_the_audit_service_unreachable(
    console_stack: ConsoleStack, recorded: str, applied: tuple[str, list[int]]
) -> None:
    async with console_before(console_stack, f"http://127.0.0.1:{free_port()}") as console:
        event = await console.get(f"/events/{recorded}")
        application = await console.get(f"/applications/{applied[0]}")

    assert event_section(event) == ("unavailable", "审计日志暂不可用")
    assert 'id="effect"' in event.text and EVENT_VILLAGE in event.text
    assert application.status_code == 200 and "审计日志暂不可用" in application.text
    assert f'data-code="{APPLIED_VILLAGE}"' in application.text
