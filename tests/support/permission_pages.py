"""The console's part of the permission matrix (tests/security/test_permission_matrix.py): its
pages and forms, each by a key signed in to a console of its own cookies; aimed, like the
services' actions (tests/support/permission_actions.py), at county A1 of
tests/support/one_province.py."""

import re
import uuid

import httpx

from tests.support.app import bearer
from tests.support.one_province import ADMIN, COUNTY, VILLAGE
from tests.support.permission_actions import (
    READS_PERIOD,
    STAGES,
    Action,
    Outcome,
    Run,
    World,
    same_version,
)


def _page(path: str, params: dict[str, str] | None = None) -> Run:
    """A page (`{id}`: A1's application; `{event}`: the visit at the village)."""

    async def run(world: World, key: str, allowed: bool) -> Outcome:
        client, _ = await world.console(key)
        url = path.format(id=world.application["application_id"], event=world.event_id)
        return Outcome(await client.get(url, params=params))

    return run


def _shown_on(page: httpx.Response, texts: dict[str, str]) -> set[str]:
    """The codes whose text (an application id, a unit code) the page shows."""
    return {code for code, text in texts.items() if re.search(re.escape(text), page.text)}


async def _console_applications(world: World, key: str, allowed: bool) -> Outcome:
    client, _ = await world.console(key)
    page = await client.get("/applications", params={"period": READS_PERIOD})
    shown = _shown_on(page, world.applied) if page.status_code == 200 else set()
    return Outcome(page, shown=shown, marked=set(world.applied))


async def _console_warnings(world: World, key: str, allowed: bool) -> Outcome:
    client, _ = await world.console(key)
    page = await client.get("/warnings", params={"unit": COUNTY})
    villages = {v: v for v in world.marked.values()}
    shown = _shown_on(page, villages) if page.status_code == 200 else set()
    return Outcome(page, shown=shown, root=COUNTY, marked=set(villages))


async def _console_record(world: World, key: str, allowed: bool) -> Outcome:
    client, token = await world.console(key)
    event_id = str(uuid.uuid4())
    form = {
        "csrf_token": token,
        "event_id": event_id,
        "type": "screening_meeting",
        "unit_code": VILLAGE,
        "occurred_at": "2018-06-04T19:00",
        "attendees": "9",
        "disputes_found": "2",
        "disputes_resolved": "1",
    }
    response = await client.post("/record", data=form)

    async def unchanged() -> bool:
        stored = await world.intake.get(f"/v1/events/{event_id}", headers=bearer(world.keys[ADMIN]))
        return stored.status_code == 404

    return Outcome(response, unchanged=unchanged)


async def _console_create(world: World, key: str, allowed: bool) -> Outcome:
    client, token = await world.console(key)
    period, code = world.slot()
    form = {
        "csrf_token": token,
        "period": period,
        "unit": code,
        f"self_evaluation-{code}": "全年无越级上访",
        f"rectifications-{code}": "建立台账",
    }
    response = await client.post("/applications", data=form)

    async def unchanged() -> bool:
        return not await world.bureaus.applied_with(county=COUNTY, period=period, code=code)

    return Outcome(response, unchanged=unchanged)


def _console_step(action: str) -> Run:
    state, decision = STAGES[action]

    async def run(world: World, key: str, allowed: bool) -> Outcome:
        client, token = await world.console(key)
        found = await world.application_in(state, shared=None if allowed else f"page {action}")
        code = found["units"][0]["code"]
        form = {"csrf_token": token, "version": str(found["version"])}
        form |= {f"decision-{code}": decision} if decision else {}
        response = await client.post(f"/applications/{found['application_id']}/{action}", data=form)
        return Outcome(response, unchanged=same_version(world, found))

    return run


async def _console_revoke(world: World, key: str, allowed: bool) -> Outcome:
    client, token = await world.console(key)
    found = await world.application_in("decided", shared=None if allowed else "page revoke")
    code, period = found["units"][0]["code"], found["period"]
    form = {
        "csrf_token": token,
        "version": str(found["version"]),
        "application_id": found["application_id"],
        f"revoke-reason-{code}": "发生极端事件",
    }
    response = await client.post(f"/titles/{code}/{period}/revoke", data=form)

    async def unchanged() -> bool:
        return await world.bureaus.title_state(code=code, period=period) == "held"

    return Outcome(response, unchanged=unchanged)


CONSOLE: dict[str, Action] = {
    "console: home": Action(303, _page("/")),
    "console: overview of the county": Action(200, _page("/overview", {"unit": COUNTY})),
    "console: overview of the key's scope": Action(200, _page("/overview")),
    "console: search the county": Action(200, _page("/search", {"unit": COUNTY, "q": "村"})),
    "console: the village's page": Action(200, _page(f"/units/{VILLAGE}")),
    "console: an event of the village": Action(200, _page("/events/{event}")),
    "console: the event as recorded": Action(200, _page("/record/{event}")),
    "console: the county's eligible units": Action(200, _page("/eligible", {"unit": COUNTY})),
    "console: the county's eligible units as a file": Action(
        200, _page("/eligible/download", {"unit": COUNTY, "format": "csv"})
    ),
    "console: warnings under the county": Action(200, _console_warnings),
    "console: the recording form": Action(200, _page("/record")),
    "console: record an event at the village": Action(303, _console_record),
    "console: applications under the key's scope": Action(200, _console_applications),
    "console: a new application of the key's county": Action(200, _page("/applications/new")),
    "console: create the county's application": Action(303, _console_create),
    "console: the application's page": Action(200, _page("/applications/{id}")),
    "console: submit it": Action(303, _console_step("submit")),
    "console: review it": Action(303, _console_step("review")),
    "console: award it": Action(303, _console_step("award")),
    "console: revoke its title": Action(303, _console_revoke),
    "console: its materials": Action(
        200, _page("/applications/{id}/materials", {"format": "xlsx"})
    ),
}
