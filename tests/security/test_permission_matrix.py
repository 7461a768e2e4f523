"""Who may do what, inside one province (tests/support/one_province.py: cities A and B, two
counties each). Every action of reporting, applications and the console is tried by a key of
every role at every scope around county A1: its village, its township, A1 itself, the
sibling county A2, its city A, the other city B, the province; and by the admin. The table
below is the expectation, written from docs/api.md, docs/domain.md section 6 and SECURITY.md:
a bureau acts by its scope's level and only over the counties in its scope, readers and
bureaus read what their scope covers, a desk reads no reports.

A refused change leaves everything as it was and an allowed one is made, a refusal by a
service names no unit, and a list or feed that is answered shows every marked unit the key
may see and none it may not."""

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from services.console.main import create_app as create_console_app
from tests.support import events
from tests.support.app import bearer
from tests.support.console import ConsoleStack
from tests.support.one_province import (
    ADMIN,
    COUNTIES,
    COUNTY,
    KEYS,
    PROVINCE,
    VILLAGE,
    Bureaus,
    campaign_units,
    within,
)
from tests.support.permission_actions import (
    APPLICATIONS,
    READS_PERIOD,
    REPORTING,
    Outcome,
    World,
    scope_of,
)
from tests.support.permission_pages import CONSOLE
from tests.support.waiting import wait_until

# The columns, in each role's group: the key's scope is county A1's first village (v), its
# first township (t), A1 itself (c), the sibling county A2 (s), A1's city A (C), the other
# city B (O), the province (P). The admin has no scope. "+": the action's success; "-": 403.
COLUMNS = "vtcsCOP"
#                                                          desk    reader  bureau  admin
MATRIX: dict[str, str] = {
    "reporting: the village's status":                    "------- +++-+-+ +++-+-+ +",
    "reporting: the village's work records":              "------- +++-+-+ +++-+-+ +",
    "reporting: the township's summary":                  "------- -++-+-+ -++-+-+ +",
    "reporting: the summary of the key's scope":          "------- +++++++ +++++++ +",
    "reporting: the county's eligible units":             "------- --+-+-+ --+-+-+ +",
    "reporting: the county's eligible units as CSV":      "------- --+-+-+ --+-+-+ +",
    "reporting: the county's units not eligible":         "------- --+-+-+ --+-+-+ +",
    "reporting: status changes under the county":         "------- --+-+-+ --+-+-+ +",
    "reporting: warnings under the county":               "------- --+-+-+ --+-+-+ +",
    "reporting: status changes under the key's scope":    "------- +++++++ +++++++ +",
    "reporting: warnings under the key's scope":          "------- +++++++ +++++++ +",
    "applications: create the county's application":      "------- ------- --+---- +",
    "applications: submit it":                            "------- ------- --+---- +",
    "applications: review it":                            "------- ------- ----+-- +",
    "applications: award it":                             "------- ------- ------+ +",
    "applications: revoke its title":                     "------- ------- ------+ +",
    "applications: read it":                              "------- --+-+-+ --+-+-+ +",
    "applications: its history":                          "------- --+-+-+ --+-+-+ +",
    "applications: its materials":                        "------- --+-+-+ --+-+-+ +",
    "applications: the county's applications":            "------- --+-+-+ --+-+-+ +",
    "applications: applications under the key's scope":   "------- +++++++ +++++++ +",
    "applications: the county's titles":                  "------- --+-+-+ --+-+-+ +",
    "applications: titles under the key's scope":         "------- +++++++ +++++++ +",
    "applications: steps under the county":               "------- --+-+-+ --+-+-+ +",
    "applications: steps under the key's scope":          "------- +++++++ +++++++ +",
    "console: home":                                      "+++++++ +++++++ +++++++ +",
    "console: overview of the county":                    "------- --+-+-+ --+-+-+ +",
    "console: overview of the key's scope":               "------- +++++++ +++++++ +",
    "console: search the county":                         "--+-+-+ --+-+-+ --+-+-+ +",
    "console: the village's page":                        "------- +++-+-+ +++-+-+ +",
    "console: an event of the village":                   "+++-+-+ +++-+-+ +++-+-+ +",
    "console: the event as recorded":                     "+++-+-+ +++-+-+ +++-+-+ +",
    "console: the county's eligible units":               "------- --+-+-+ --+-+-+ +",
    "console: the county's eligible units as a file":     "------- --+-+-+ --+-+-+ +",
    "console: warnings under the county":                 "------- --+-+-+ --+-+-+ +",
    "console: the recording form":                        "+++++++ +++++++ +++++++ +",
    "console: record an event at the village":            "+++-+-+ ------- ------- +",
    "console: applications under the key's scope":        "------- +++++++ +++++++ +",
    "console: a new application of the key's county":     "------- ------- --++--- +",
    "console: create the county's application":           "------- ------- --+---- +",
    "console: the application's page":                    "------- --+-+-+ --+-+-+ +",
    "console: submit it":                                 "------- ------- --+---- +",
    "console: review it":                                 "------- ------- ----+-- +",
    "console: award it":                                  "------- ------- ------+ +",
    "console: revoke its title":                          "------- ------- ------+ +",
    "console: its materials":                             "------- --+-+-+ --+-+-+ +",
}  # fmt: skip
# The keys in the table's order: each role at each scope, then the admin.
KEY_ORDER = [name for name in KEYS if name != ADMIN] + [ADMIN]
UNIT_CODE = re.compile(r"\b\d{12}\b")
ACTIONS = REPORTING | APPLICATIONS | CONSOLE


def expected_row(action: str) -> str:
    return MATRIX[action].replace(" ", "")


# --- the province as the tests find it --------------------------------------------------------


async def seeded_events(intake: httpx.AsyncClient, admin: str) -> tuple[dict[str, str], str]:
    """In each county, a collective visit at its first village (a status change) and a visit
    just short of one (a warning); returns each county's village, and the visit at A1's."""
    marked = {county: campaign_units(county)[1] for county in COUNTIES}
    assert marked[COUNTY] == VILLAGE
    visits = [
        events.visit(village, destination="county", headcount=headcount)
        for village in marked.values()
        for headcount in (6, 3)
    ]
    response = await intake.post("/v1/events/batch", json={"events": visits}, headers=bearer(admin))
    assert response.status_code == 200, response.text
    assert {r["status"] for r in response.json()["results"]} == {"accepted"}, response.text
    return marked, visits[0]["event_id"]


async def reported(reporting: httpx.AsyncClient, admin: str, marked: set[str]) -> bool:
    """Whether reporting shows a status change and a warning at each marked village."""
    for path in ("/v1/feed/status-changes", "/v1/warnings"):
        page = await reporting.get(
            path, params={"root": PROVINCE, "limit": "1000"}, headers=bearer(admin)
        )
        if not marked <= {item["unit_code"] for item in page.json()["items"]}:
            return False
    return True


@pytest.fixture(scope="module")
async def world(province: ConsoleStack) -> AsyncIterator[World]:
    urls, admin = province.urls, province.keys[ADMIN]
    console = create_console_app(province.console_settings())
    async with (
        httpx.AsyncClient(base_url=urls["intake"], timeout=30) as intake,
        httpx.AsyncClient(base_url=urls["reporting"], timeout=30) as reporting,
        httpx.AsyncClient(base_url=urls["applications"], timeout=30) as applications,
        console.router.lifespan_context(console),
    ):
        marked, event_id = await seeded_events(intake, admin)
        bureaus = Bureaus(applications, admin)
        decided = {
            county: await bureaus.apply(
                county=county,
                period=READS_PERIOD,
                code=campaign_units(county)[-1],
                until="decided",
            )
            for county in COUNTIES
        }
        await wait_until(
            lambda: reported(reporting, admin, set(marked.values())),
            timeout=60,
            message="reporting to show each marked village's status change and warning",
        )
        found = World(
            keys=province.keys,
            intake=intake,
            reporting=reporting,
            applications=applications,
            console_transport=httpx.ASGITransport(app=console),
            event_id=event_id,
            application=decided[COUNTY],
            applied={county: a["application_id"] for county, a in decided.items()},
            awarded={county: a["units"][0]["code"] for county, a in decided.items()},
            marked=marked,
        )
        yield found
        await found.close()


# --- the test ----------------------------------------------------------------------------------


async def tried(world: World, action: str, key: str, allowed: bool) -> tuple[str, list[str]]:
    """What the key got ('+', '-' or the status in brackets), and what went wrong besides."""
    outcome = await ACTIONS[action].run(world, key, allowed)
    status = outcome.response.status_code
    success = ACTIONS[action].success
    symbol = "+" if status == success else "-" if status == 403 else f"[{status}]"
    problems = []
    if symbol.startswith("["):
        problems.append(f"{key}: {status} {outcome.response.text[:300]}")
    if status == 403:
        problems += await refusal_problems(outcome, key)
    elif outcome.shown is not None:
        problems += listing_problems(outcome, key)
    elif symbol == "+" and outcome.unchanged is not None and await outcome.unchanged():
        problems.append(f"{key}: answered {status}, and yet nothing changed")
    return symbol, problems


async def refusal_problems(outcome: Outcome, key: str) -> list[str]:
    found = []
    media = outcome.response.headers.get("content-type", "")
    if "problem+json" in media and UNIT_CODE.search(outcome.response.text):
        found.append(f"{key}: the refusal names a unit: {outcome.response.text[:300]}")
    if outcome.unchanged is not None and not await outcome.unchanged():
        found.append(f"{key}: refused, and yet something changed")
    return found


def listing_problems(outcome: Outcome, key: str) -> list[str]:
    assert outcome.shown is not None
    scope = scope_of(key)
    seen = {c for c in outcome.shown if within(c, scope) and within(c, outcome.root)}
    beyond = outcome.shown - seen
    missing = {m for m in outcome.marked if within(m, scope) and within(m, outcome.root)}
    missing -= outcome.shown
    found = []
    if beyond:
        found.append(f"{key}: shows what lies outside its scope or the root: {sorted(beyond)}")
    if missing:
        found.append(f"{key}: leaves out what it may see: {sorted(missing)}")
    return found


@pytest.mark.parametrize("action", list(MATRIX))
async def test_each_role_and_scope_gets_what_the_table_says(world: World, action: str) -> None:
    expected = expected_row(action)
    results = await asyncio.gather(
        *(
            tried(world, action, key, want == "+")
            for key, want in zip(KEY_ORDER, expected, strict=True)
        )
    )
    got = "".join(symbol for symbol, _ in results)
    problems = [problem for _, found in results for problem in found]
    wrong = [
        f"{key}: expected {'allowed' if want == '+' else 'refused'}, got {have}"
        for key, want, (have, _) in zip(KEY_ORDER, expected, results, strict=True)
        if want != have
    ]
    assert (got, problems) == (expected, []), "\n".join(wrong + problems)


def test_the_table_has_every_action_and_every_key() -> None:
    assert set(MATRIX) == set(ACTIONS)
    assert len(KEY_ORDER) == 3 * len(COLUMNS) + 1
    assert all(len(expected_row(action)) == len(KEY_ORDER) for action in MATRIX)
