"""Every form of the console acts only with the token of the session that posts it. Two people
sign in, each with a key of their own that may do what the form does; the first posts the form
with the second's real token, then with none: refused (403) and nothing changed. With its own
token the same form does what it says, so the refusals were the token's doing alone.

The forms are the console's POST routes, found in the app itself: a form added later without
a case here fails `test_every_form_of_the_console_has_a_case`."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from services.console.main import create_app as create_console_app
from shared.access.models import Role
from shared.campaign import SHANGHAI, system_now
from shared.db import Database
from shared.registry.bodies import BodyRepository, load_bodies
from tests.support.app import bearer
from tests.support.cases import years_covered
from tests.support.console import TOKEN, ConsoleStack, key_id, new_key, sessions_of, sign_in
from tests.support.events import visit
from tests.support.one_province import (
    ADMIN,
    OTHER_CITY,
    OTHER_CITY_COUNTIES,
    PROVINCE,
    Bureaus,
    campaign_units,
)
from tests.support.waiting import wait_until

# The permission matrix works in county A1 and the fuzzing in B1: these forms act in B2, in
# a period of their own.
COUNTY = OTHER_CITY_COUNTIES[1]
PERIOD = "2026"
VILLAGE = campaign_units(COUNTY)[1]


@dataclass
class Posting:
    """A form as its page would post it (its token aside), and how to tell whether it acted."""

    url: str
    fields: dict[str, str]
    acted: Callable[[], Awaitable[bool]]


@dataclass
class Console:
    app: FastAPI
    db: Database
    bureaus: Bureaus
    intake: httpx.AsyncClient
    cases: httpx.AsyncClient
    admin: str
    units: list[str]

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url="http://console")

    def unit(self) -> str:
        """A unit of the county no form has applied with yet."""
        return self.units.pop()

    async def application(self, until: str) -> tuple[dict[str, Any], str]:
        code = self.unit()
        found = await self.bureaus.apply(county=COUNTY, period=PERIOD, code=code, until=until)
        return found, code

    async def state_of(self, application_id: str) -> str:
        return str((await self.bureaus.application(application_id))["state"])

    async def event_known_to_cases(self) -> str:
        """A visit to the village, once the cases service has read it (it may be disputed)."""
        event = visit(VILLAGE, occurred_at="2026-06-03T09:30:00+08:00")
        posted = await self.intake.post("/v1/events", json=event, headers=bearer(self.admin))
        assert posted.status_code == 202, posted.text

        async def known() -> bool:
            async with self.db.connection() as connection:
                return bool(await connection.fetchval(KNOWN_TO_CASES, event["event_id"]))

        await wait_until(known, timeout=30, message="the cases service to read the visit")
        return str(event["event_id"])

    async def case_state(self, case_id: str) -> str | None:
        found = await self.cases.get(f"/v1/cases/{case_id}", headers=bearer(self.admin))
        return str(found.json()["state"]) if found.status_code == 200 else None

    async def dispute_state(self, dispute_id: str) -> str | None:
        found = await self.cases.get(f"/v1/disputes/{dispute_id}", headers=bearer(self.admin))
        return str(found.json()["state"]) if found.status_code == 200 else None


Preparation = Callable[[Console], Awaitable[Posting]]
KNOWN_TO_CASES = "SELECT EXISTS (SELECT 1 FROM cases.event WHERE event_id = $1::uuid)"


async def recording(console: Console) -> Posting:
    event_id = str(uuid.uuid4())
    fields = {
        "event_id": event_id,
        "type": "screening_meeting",
        "unit_code": VILLAGE,
        "occurred_at": "2018-06-04T19:00",
        "attendees": "9",
        "disputes_found": "2",
        "disputes_resolved": "1",
    }

    async def acted() -> bool:
        stored = await console.intake.get(f"/v1/events/{event_id}", headers=bearer(console.admin))
        return stored.status_code == 200

    return Posting("/record", fields, acted)


async def creating(console: Console) -> Posting:
    code = console.unit()
    fields = {"period": PERIOD, "unit": code, f"self_evaluation-{code}": "全年无越级上访"}

    async def acted() -> bool:
        found = await console.bureaus.applied_with(county=COUNTY, period=PERIOD, code=code)
        return bool(found)

    return Posting("/applications", fields, acted)


def stepping(action: str, *, state: str, decision: str | None, after: str) -> Preparation:
    """A form that takes an application in `state` to `after`."""

    async def prepare(console: Console) -> Posting:
        found, code = await console.application(state)
        fields = {"version": str(found["version"])}
        fields |= {f"decision-{code}": decision} if decision else {}
        application_id = str(found["application_id"])

        async def acted() -> bool:
            return await console.state_of(application_id) == after

        return Posting(f"/applications/{application_id}/{action}", fields, acted)

    return prepare


async def revoking(console: Console) -> Posting:
    found, code = await console.application("decided")
    fields = {
        "version": str(found["version"]),
        "application_id": str(found["application_id"]),
        f"revoke-reason-{code}": "发生极端事件",
    }

    async def acted() -> bool:
        return await console.bureaus.title_state(code=code, period=PERIOD) == "revoked"

    return Posting(f"/titles/{code}/{PERIOD}/revoke", fields, acted)


async def filing(console: Console) -> Posting:
    event_id = await console.event_known_to_cases()
    dispute_id = str(uuid.uuid4())
    fields = {"dispute_id": dispute_id, "grounds": "facts", "statement": "当日无人上访"}

    async def acted() -> bool:
        return await console.dispute_state(dispute_id) == "filed"

    return Posting(f"/events/{event_id}/disputes", fields, acted)


async def deciding(console: Console) -> Posting:
    event_id = await console.event_known_to_cases()
    dispute_id = str(uuid.uuid4())
    filed = await console.cases.post(
        "/v1/disputes",
        json={
            "dispute_id": dispute_id,
            "event_id": event_id,
            "grounds": "facts",
            "statement": "当日无人上访",
        },
        headers=bearer(console.admin),
    )
    assert filed.status_code == 201, filed.text
    fields = {"version": "1", "decision": "reject", "reason": "经核实属实"}

    async def acted() -> bool:
        return await console.dispute_state(dispute_id) == "decided"

    return Posting(f"/disputes/{dispute_id}/decide", fields, acted)


async def registering(console: Console) -> Posting:
    case_id = str(uuid.uuid4())
    fields = {
        "case_id": case_id,
        "unit_code": VILLAGE,
        "received_at": "2026-12-01T09:30",
        "channel": "visit",
        "category": "劳动保障",
        "petitioner_ref": uuid.uuid4().hex,
        "headcount": "1",
        "summary": "工资被拖欠",
    }

    async def acted() -> bool:
        return await console.case_state(case_id) == "registered"

    return Posting("/cases", fields, acted)


async def routing(console: Console) -> Posting:
    case_id = str(uuid.uuid4())
    registered = await console.cases.post(
        "/v1/cases",
        json={
            "case_id": case_id,
            "unit_code": VILLAGE,
            "received_at": "2026-12-01T09:30:00+08:00",
            "channel": "letter",
            "category": "劳动保障",
            "petitioner_ref": uuid.uuid4().hex,
            "summary": "工资被拖欠",
        },
        headers=bearer(console.admin),
    )
    assert registered.status_code == 201, registered.text
    fields = {"version": "1", "unit_code": COUNTY, "body": "民政"}

    async def acted() -> bool:
        return await console.case_state(case_id) == "routed"

    return Posting(f"/cases/{case_id}/route", fields, acted)


@dataclass(frozen=True)
class Form:
    route: str  # the console's route it posts to
    role: Role  # who may send it (two keys of this role and scope sign in)
    scope: str
    prepare: Preparation


# The forms signed-in people send; the sign-in and sign-out forms are tested on their own.
FORMS = {
    "record": Form("/record", Role.desk, VILLAGE, recording),
    "create": Form("/applications", Role.bureau, COUNTY, creating),
    "submit": Form(
        "/applications/{application_id}/submit",
        Role.bureau,
        COUNTY,
        stepping("submit", state="draft", decision=None, after="submitted"),
    ),
    "review": Form(
        "/applications/{application_id}/{stage}",
        Role.bureau,
        OTHER_CITY,
        stepping("review", state="submitted", decision="approve", after="reviewed"),
    ),
    "award": Form(
        "/applications/{application_id}/{stage}",
        Role.bureau,
        PROVINCE,
        stepping("award", state="reviewed", decision="award", after="decided"),
    ),
    "revoke": Form("/titles/{code}/{period}/revoke", Role.bureau, PROVINCE, revoking),
    "dispute": Form("/events/{event_id}/disputes", Role.desk, VILLAGE, filing),
    "decide": Form("/disputes/{dispute_id}/{action}", Role.bureau, COUNTY, deciding),
    "register": Form("/cases", Role.desk, VILLAGE, registering),
    "case-step": Form("/cases/{case_id}/{action}", Role.desk, VILLAGE, routing),
}
SESSION_FORMS = {"/signin", "/signout"}


@pytest.fixture(scope="module")
async def console(
    province: ConsoleStack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Console]:
    """The console in-process, with the working-day calendar covering the dispute windows of
    visits accepted now."""
    this_year = system_now().astimezone(SHANGHAI).year
    app = create_console_app(province.console_settings())
    db = Database.from_settings(province.settings, pool_size=1)
    admin = province.keys[ADMIN]
    bodies = tmp_path_factory.mktemp("bodies") / "bodies.csv"
    bodies.write_text(f"unit_code,body,name\n{COUNTY},民政,民政局\n", encoding="utf-8")
    async with db.engine.begin() as connection:
        await load_bodies(await BodyRepository.from_connection(connection), bodies)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(base_url=province.urls["intake"]) as intake,
        httpx.AsyncClient(base_url=province.urls["applications"]) as applications,
        httpx.AsyncClient(base_url=province.urls["cases"]) as cases,
        years_covered(
            db,
            {this_year, this_year + 1},
            tmp_path_factory.mktemp("calendar"),
            database_url=province.settings.database_url,
        ),
    ):
        yield Console(
            app=app,
            db=db,
            bureaus=Bureaus(applications, admin),
            intake=intake,
            cases=cases,
            admin=admin,
            units=campaign_units(COUNTY)[2:],
        )
    await db.dispose()


async def signed_in(console: Console, role: Role, scope: str) -> tuple[httpx.AsyncClient, str]:
    """A client signed in with a new key of the role and scope, and its session's token."""
    client = console.client()
    response = await sign_in(client, await new_key(console.db, role, scope))
    assert response.status_code == 303, response.text
    return client, await token_on(client, "/record")


async def token_on(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    found = TOKEN.search(page.text)
    assert found is not None, page.text
    return found.group(1)


def test_every_form_of_the_console_has_a_case(console: Console) -> None:
    posted = {
        route.path
        for route in iter_route_contexts(console.app.routes)
        if route.path and "POST" in (route.methods or set())
    }
    assert posted == {form.route for form in FORMS.values()} | SESSION_FORMS


@pytest.mark.parametrize("name", list(FORMS))
async def test_a_form_acts_only_with_its_own_sessions_token(console: Console, name: str) -> None:
    form = FORMS[name]
    (mine, my_token), (theirs, their_token) = [
        await signed_in(console, form.role, form.scope) for _ in range(2)
    ]
    assert my_token != their_token
    posting = await form.prepare(console)
    try:
        for token in (their_token, None):
            fields = posting.fields | ({"csrf_token": token} if token else {})
            refused = await mine.post(posting.url, data=fields)
            assert refused.status_code == 403, refused.text
            assert "表单已失效" in refused.text
            assert not await posting.acted()
        done = await mine.post(posting.url, data=posting.fields | {"csrf_token": my_token})
        assert done.status_code == 303, done.text
        assert await posting.acted()
    finally:
        await mine.aclose()
        await theirs.aclose()


async def test_signing_in_needs_the_sign_in_forms_own_token(console: Console) -> None:
    key = await new_key(console.db, Role.reader, COUNTY)
    async with console.client() as mine, console.client() as theirs:
        await mine.get("/signin")
        their_token = await token_on(theirs, "/signin")
        for token in (their_token, None):
            fields = {"key": key} | ({"csrf_token": token} if token else {})
            refused = await mine.post("/signin", data=fields)
            assert refused.status_code == 403, refused.text
            assert await sessions_of(console.db, key_id(key)) == []
        my_token = await token_on(mine, "/signin")
        done = await mine.post("/signin", data={"key": key, "csrf_token": my_token})
        assert done.status_code == 303, done.text
        assert len(await sessions_of(console.db, key_id(key))) == 1


async def test_signing_out_needs_the_sessions_own_token(console: Console) -> None:
    mine, my_token = await signed_in(console, Role.reader, COUNTY)
    theirs, their_token = await signed_in(console, Role.reader, COUNTY)
    try:
        for token in (their_token, None):
            refused = await mine.post("/signout", data={"csrf_token": token} if token else {})
            assert refused.status_code == 403, refused.text
            assert (await mine.get("/record")).status_code == 200  # still signed in
        done = await mine.post("/signout", data={"csrf_token": my_token})
        assert done.status_code == 303
        assert (await mine.get("/record")).status_code == 303  # to the sign-in page
        assert (await theirs.get("/record")).status_code == 200
    finally:
        await mine.aclose()
        await theirs.aclose()
