"""What each action of the permission matrix (tests/security/test_permission_matrix.py) does,
here those of reporting and applications (the console's: tests/support/permission_pages.py):
one request by one key, aimed at county A1 of tests/support/one_province.py (its first
village, its first township, the county itself or an application of it), or at the key's own
scope; the status its success answers; for a list or feed, what it showed; for a change, how
to see that a refusal changed nothing.

A change by a key the table allows acts on an application of its own, made for it by the admin
key in the state the action needs, with a unit and period no other request uses
(`World.slot`); the keys the table refuses try it on one application shared among them, which
their refusals must leave as it was."""

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.app import bearer
from tests.support.console import TOKEN, sign_in
from tests.support.one_province import (
    ADMIN,
    COUNTY,
    KEYS,
    PROVINCE,
    TOWNSHIP,
    VILLAGE,
    Bureaus,
    campaign_units,
)

# The period events count in, and the one whose applications the lists are read for.
EVENTS_PERIOD = "2018"
READS_PERIOD = "2025"
# Periods of the changes' own applications: each takes a unit of A1 no other took for it.
CHANGE_PERIODS = ("2019", "2020", "2021", "2022", "2023", "2024")


@dataclass
class World:
    keys: dict[str, str]
    intake: httpx.AsyncClient
    reporting: httpx.AsyncClient
    applications: httpx.AsyncClient
    console_transport: httpx.AsyncBaseTransport
    event_id: str  # a visit at VILLAGE
    application: dict[str, Any]  # A1's of READS_PERIOD, decided, its unit awarded
    applied: dict[str, str]  # county: its application of READS_PERIOD
    awarded: dict[str, str]  # county: its unit awarded in READS_PERIOD
    marked: dict[str, str]  # county: its village with a status change and a warning
    consoles: dict[str, tuple[httpx.AsyncClient, str]] = field(default_factory=dict)
    _shared: dict[str, asyncio.Task[dict[str, Any]]] = field(default_factory=dict)
    _slots: Iterator[tuple[str, str]] = field(
        default_factory=lambda: itertools.product(CHANGE_PERIODS, campaign_units(COUNTY))
    )

    @property
    def bureaus(self) -> Bureaus:
        return Bureaus(self.applications, self.keys[ADMIN])

    def slot(self) -> tuple[str, str]:
        """A period and a unit of A1 that no application of the matrix has used."""
        return next(self._slots)

    async def application_in(self, state: str, *, shared: str | None) -> dict[str, Any]:
        """A new application of A1 of one unit, in the state; with `shared`, the one made for
        that name the first time it was asked for."""
        if shared is None:
            period, code = self.slot()
            return await self.bureaus.apply(county=COUNTY, period=period, code=code, until=state)
        if shared not in self._shared:
            self._shared[shared] = asyncio.create_task(self.application_in(state, shared=None))
        return await self._shared[shared]

    async def console(self, key: str) -> tuple[httpx.AsyncClient, str]:
        """A console client signed in with the key (cookies of its own), and its form token."""
        if key not in self.consoles:
            client = httpx.AsyncClient(transport=self.console_transport, base_url="http://console")
            signed_in = await sign_in(client, self.keys[key])
            assert signed_in.status_code == 303, signed_in.text
            form = await client.get("/record")
            token = TOKEN.search(form.text)
            assert token is not None, form.text
            self.consoles[key] = (client, token.group(1))
        return self.consoles[key]

    async def close(self) -> None:
        for client, _ in self.consoles.values():
            await client.aclose()


def scope_of(key: str) -> str | None:
    return KEYS[key][1]


@dataclass
class Outcome:
    response: httpx.Response
    # A list or feed: the units (or counties) it showed, the root it was asked for (None:
    # the key's scope), and those it must show wherever the key may see them.
    shown: set[str] | None = None
    root: str | None = None
    marked: set[str] = field(default_factory=set)
    # A change: whether everything is as it was (as a refusal must leave it, a success not).
    unchanged: Callable[[], Awaitable[bool]] | None = None


# What a key does (the world, the key's name, whether the table allows it).
Run = Callable[[World, str, bool], Awaitable[Outcome]]


@dataclass(frozen=True)
class Action:
    success: int
    run: Run


# --- reporting -------------------------------------------------------------------------------


def _reporting_read(path: str, params: dict[str, str]) -> Run:
    async def run(world: World, key: str, allowed: bool) -> Outcome:
        headers = bearer(world.keys[key])
        return Outcome(await world.reporting.get(path, params=params, headers=headers))

    return run


def _reporting_feed(path: str, *, root: str | None) -> Run:
    """A feed under the root (None: under the key's scope; the province for the admin)."""

    async def run(world: World, key: str, allowed: bool) -> Outcome:
        asked = root or scope_of(key) or PROVINCE
        response = await world.reporting.get(
            path, params={"root": asked, "limit": "1000"}, headers=bearer(world.keys[key])
        )
        shown = {item["unit_code"] for item in response.json().get("items", [])}
        return Outcome(response, shown=shown, root=asked, marked=set(world.marked.values()))

    return run


async def _own_summary(world: World, key: str, allowed: bool) -> Outcome:
    response = await world.reporting.get(
        "/v1/reports/summary", params={"period": EVENTS_PERIOD}, headers=bearer(world.keys[key])
    )
    if response.status_code == 200:
        root = response.json()["root"]
        assert (root and root["code"]) == scope_of(key), response.text
    return Outcome(response)


COUNTY_LIST = {"root": COUNTY, "period": EVENTS_PERIOD, "level": "village"}
REPORTING: dict[str, Action] = {
    "reporting: the village's status": Action(
        200, _reporting_read(f"/v1/units/{VILLAGE}/status", {"period": EVENTS_PERIOD})
    ),
    "reporting: the village's work records": Action(
        200, _reporting_read(f"/v1/units/{VILLAGE}/indicators", {"period": EVENTS_PERIOD})
    ),
    "reporting: the township's summary": Action(
        200, _reporting_read("/v1/reports/summary", {"root": TOWNSHIP, "period": EVENTS_PERIOD})
    ),
    "reporting: the summary of the key's scope": Action(200, _own_summary),
    "reporting: the county's eligible units": Action(
        200, _reporting_read("/v1/reports/eligible", COUNTY_LIST)
    ),
    "reporting: the county's eligible units as CSV": Action(
        200, _reporting_read("/v1/reports/eligible", COUNTY_LIST | {"format": "csv"})
    ),
    "reporting: the county's units not eligible": Action(
        200, _reporting_read("/v1/reports/not-eligible", COUNTY_LIST)
    ),
    "reporting: status changes under the county": Action(
        200, _reporting_feed("/v1/feed/status-changes", root=COUNTY)
    ),
    "reporting: warnings under the county": Action(
        200, _reporting_feed("/v1/warnings", root=COUNTY)
    ),
    "reporting: status changes under the key's scope": Action(
        200, _reporting_feed("/v1/feed/status-changes", root=None)
    ),
    "reporting: warnings under the key's scope": Action(
        200, _reporting_feed("/v1/warnings", root=None)
    ),
}


# --- applications ----------------------------------------------------------------------------


async def _api_create(world: World, key: str, allowed: bool) -> Outcome:
    period, code = world.slot()
    body = {
        "period": period,
        "county_code": COUNTY,
        "units": [{"code": code, "self_evaluation": "全年无越级上访"}],
    }
    response = await world.applications.post(
        "/v1/applications", json=body, headers=bearer(world.keys[key])
    )

    async def unchanged() -> bool:
        return not await world.bureaus.applied_with(county=COUNTY, period=period, code=code)

    return Outcome(response, unchanged=unchanged)


STAGES = {  # action: the state it acts on, and its body for the application's one unit
    "submit": ("draft", None),
    "review": ("submitted", "approve"),
    "award": ("reviewed", "award"),
}


def _api_step(action: str) -> Run:
    state, decision = STAGES[action]

    async def run(world: World, key: str, allowed: bool) -> Outcome:
        found = await world.application_in(state, shared=None if allowed else f"api {action}")
        code = found["units"][0]["code"]
        body = {"decisions": [{"code": code, "decision": decision}]} if decision else None
        response = await world.applications.post(
            f"/v1/applications/{found['application_id']}/{action}",
            json=body,
            headers=bearer(world.keys[key]) | {"If-Match": f'"{found["version"]}"'},
        )
        return Outcome(response, unchanged=same_version(world, found))

    return run


def same_version(world: World, application: dict[str, Any]) -> Callable[[], Awaitable[bool]]:
    async def unchanged() -> bool:
        now = await world.bureaus.application(application["application_id"])
        return bool(now["version"] == application["version"])

    return unchanged


async def _api_revoke(world: World, key: str, allowed: bool) -> Outcome:
    found = await world.application_in("decided", shared=None if allowed else "api revoke")
    code, period = found["units"][0]["code"], found["period"]
    response = await world.applications.post(
        f"/v1/titles/{code}/{period}/revoke",
        json={"reason": "发生极端事件"},
        headers=bearer(world.keys[key]) | {"If-Match": f'"{found["version"]}"'},
    )

    async def unchanged() -> bool:
        return await world.bureaus.title_state(code=code, period=period) == "held"

    return Outcome(response, unchanged=unchanged)


def _api_read(path: str, params: dict[str, str] | None = None) -> Run:
    """A read of A1's application (`{id}` in the path)."""

    async def run(world: World, key: str, allowed: bool) -> Outcome:
        url = path.format(id=world.application["application_id"])
        return Outcome(
            await world.applications.get(url, params=params, headers=bearer(world.keys[key]))
        )

    return run


def _api_list(path: str, *, root: str | None, shows: str) -> Run:
    """A list or feed under the root (None: the key's scope, by leaving root out). `shows`:
    what its items are checked by, the county (`county_code`) or the title's unit."""

    async def run(world: World, key: str, allowed: bool) -> Outcome:
        params = {"period": READS_PERIOD, "limit": "1000"}
        # Without a root, the key's scope; the admin, of no scope, names the province.
        asked = root or (None if scope_of(key) else PROVINCE)
        params |= {"root": asked} if asked else {}
        response = await world.applications.get(
            path, params=params, headers=bearer(world.keys[key])
        )
        items = response.json().get("items", []) if response.status_code == 200 else []
        if shows == "county":
            shown = {item["county_code"] for item in items}
            marked = set(world.applied)
        else:
            shown = {item["unit"]["code"] for item in items}
            marked = set(world.awarded.values())
        return Outcome(response, shown=shown, root=asked, marked=marked)

    return run


APPLICATIONS: dict[str, Action] = {
    "applications: create the county's application": Action(201, _api_create),
    "applications: submit it": Action(200, _api_step("submit")),
    "applications: review it": Action(200, _api_step("review")),
    "applications: award it": Action(200, _api_step("award")),
    "applications: revoke its title": Action(200, _api_revoke),
    "applications: read it": Action(200, _api_read("/v1/applications/{id}")),
    "applications: its history": Action(200, _api_read("/v1/applications/{id}/history")),
    "applications: its materials": Action(
        200, _api_read("/v1/applications/{id}/materials", {"format": "xlsx"})
    ),
    "applications: the county's applications": Action(
        200, _api_list("/v1/applications", root=COUNTY, shows="county")
    ),
    "applications: applications under the key's scope": Action(
        200, _api_list("/v1/applications", root=None, shows="county")
    ),
    "applications: the county's titles": Action(
        200, _api_list("/v1/titles", root=COUNTY, shows="unit")
    ),
    "applications: titles under the key's scope": Action(
        200, _api_list("/v1/titles", root=None, shows="unit")
    ),
    "applications: steps under the county": Action(
        200, _api_list("/v1/feed/applications", root=COUNTY, shows="county")
    ),
    "applications: steps under the key's scope": Action(
        200, _api_list("/v1/feed/applications", root=None, shows="county")
    ),
}
