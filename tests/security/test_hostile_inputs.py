"""Hostile input to every route of every service: no answer is a server error.

The six services run as in production (uvicorn) on a database and topics of their own. Each
one's routes come from the app itself (`app.routes`, also those left out of OpenAPI) and its
OpenAPI document, so a route added later is covered without touching this file. For every
route a valid request is built (known units, periods, an event and an application, the request
examples of the OpenAPI document); then one part of it at a time is replaced by something
hostile: each path and query parameter, each field of each example body (and of the items of
a batch or an application), the whole body, and the headers a client controls. No answer may
be a 5xx or a dropped connection, and every 4xx from an API must be a problem+json. The
console's pages and forms are swept the same way with a signed-in session
(tests/support/hostile_console.py); its refusals must be pages.

The application every route is asked about holds texts as hostile as the API takes (control
characters, right-to-left overrides, emoji, formula-like cells, the longest allowed), so that
reading it, and its materials in both formats, renders them.

The cases an outside review found (NUL in text, a cursor with non-ASCII digits, a non-ASCII
correlation id) are also tested on their own below, with what they store."""

import asyncio
import io
import json
import os
import subprocess
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openpyxl
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from services.applications.main import create_app as create_applications_app
from services.applications.materials import XLSX_MEDIA_TYPE
from services.applications.materials_pdf import PDF_MEDIA_TYPE
from services.cases.main import create_app as create_cases_app
from services.console.main import create_app as create_console_app
from services.evaluation.main import create_app as create_evaluation_app
from services.intake.main import create_app as create_intake_app
from services.reporting.main import create_app as create_reporting_app
from shared import kafka
from shared.access.models import Role
from shared.config import Settings
from shared.db import Database
from tests.conftest import COUNTY, DEMO_UNITS, VILLAGE, bearer
from tests.support import events, hostile_console
from tests.support.hostile import (
    Attempt,
    changed,
    from_uvicorn,
    hostile_application,
    send_all,
    short,
)
from tests.support.hostile_console import Known
from tests.support.pipeline import prepare
from tests.support.processes import free_port, uvicorn, wait_healthy
from tests.support.stack import create_database, drop_database, new_stack

SERVICES = {
    "intake": ("services.intake.main:create_app", create_intake_app),
    "evaluation": ("services.evaluation.main:create_app", create_evaluation_app),
    "reporting": ("services.reporting.main:create_app", create_reporting_app),
    "applications": ("services.applications.main:create_app", create_applications_app),
    "cases": ("services.cases.main:create_app", create_cases_app),
    "console": ("services.console.main:create_app", create_console_app),
}
# Routes the apps serve today; whatever they add is found in `app.routes` and covered too.
EXPECTED_ROUTES = {
    "intake": {"/v1/events", "/v1/events/batch", "/v1/events/{event_id}"},
    "evaluation": {"/v1/events/{event_id}/effect"},
    "reporting": {
        "/v1/units/{code}/status",
        "/v1/reports/summary",
        "/v1/reports/eligible",
        "/v1/feed/status-changes",
    },
    "applications": {
        "/v1/applications",
        "/v1/applications/{application_id}/submit",
        "/v1/applications/{application_id}/review",
        "/v1/applications/{application_id}/award",
        "/v1/applications/{application_id}/materials",
        "/v1/titles/{code}/{period}/revoke",
        "/v1/feed/applications",
    },
    "cases": {
        "/v1/disputes",
        "/v1/disputes/{dispute_id}",
        "/v1/disputes/{dispute_id}/decide",
        "/v1/feed/disputes",
        "/v1/calendar/{year}",
    },
    "console": {
        "/signin",
        "/disputes/{dispute_id}",
        "/overview",
        "/units/{code}",
        "/record",
        "/applications/{application_id}/{stage}",
        "/titles/{code}/{period}/revoke",
    },
}
SERVICE_ENV = {
    "SANWU_LOG_LEVEL": "ERROR",
    "SANWU_INTAKE_RUN_RELAY": "false",
    "SANWU_EVALUATION_RUN_CONSUMER": "false",
    "SANWU_STATUS_RELAY_ENABLED": "false",
    "SANWU_REPORTING_RUN_CONSUMER": "false",
    "SANWU_APPLICATIONS_RUN_CONSUMER": "false",
    "SANWU_APPLICATIONS_RUN_RELAY": "false",
    "SANWU_CASES_RUN_CONSUMER": "false",
    "SANWU_CASES_RUN_RELAY": "false",
    "SANWU_APPLICATION_WINDOW": "01-01/12-31",
}

HOSTILE_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "x" * 10_000,  # a URL of about this length still fits the server's request line
    "²",
    "ZjE6wrI",  # base64url of "f1:²", a feed cursor with a non-ASCII digit
    "ZTE6wrI",  # base64url of "e1:²"
    "ZjE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ",  # "f1:" and 27 nines, past any bigint
    "ZjE6LTE",  # "f1:-1"
    "١٢٣٤٥٦٧٨٩٠١٢",  # twelve Arabic-Indic digits
    "٣",
    "\x01\x1b\x7f",
    "３４０７２２１００２０１",  # full-width digits
    "\u202e340722100201",  # right-to-left override
    "😀" * 50,
    "' OR '1'='1",
    "../../../etc/passwd",
    "%00",
    "null",
    "-1",
    "99999999999999999999999999999",
    "1e309",
    "00000000-0000-0000-0000-000000000000",
    "0b6f0c5e-6a53-4b52-9d5e-7a3c2d0b1f1g",
    "0b6f0c5e-6a53-4b52-9d5e-٧a3c2d0b1f11",
]
# Lone surrogates can only travel as JSON escapes: they are sent in bodies only.
HOSTILE_JSON: list[Any] = [
    *HOSTILE_TEXT,
    "x" * 200_000,
    "\ud800",
    "a\udfffb",
    None,
    True,
    0,
    -1,
    2**63,
    -(2**63) - 1,
    10**400,
    1.5,
    1e308,
    [],
    {},
    ["\x00"],
    {"\x00": "\x00"},
]
HOSTILE_KEYS = ["unexpected", "\x00", "\ud800", "x" * 10_000]
HOSTILE_BODIES = [
    b"",
    b"{",
    b"\xff\xfe\x00{",
    b"[]",
    b"null",
    b'"\\u0000"',
    b"1e999999",
    b"9" * 5000,
    b"[" * 100_000,
    b'{"events": ' * 5_000,
    b'{"events": "\\ud800"}',
    b'{"events": [1, "x", null, [], {"\\ud800": 1}]}',
    b"NaN",
]
HOSTILE_HEADER_VALUES = [
    "é😀".encode(),
    b"\xff\xfe\x80",
    b"x" * 8000,
    b"Bearer " + "é😀".encode(),
    b"Bearer sanwu_\xc3\xa9_\xff",
    b"Bearer sanwu_" + b"x" * 8000,
    b"Bearer sanwu__",
    b"",
    b"*",
    b'W/"\xff"',
    b'"\xb2"',  # "²" as a Latin-1 header carries it
    '"٣"'.encode(),
]
HEADERS = ["X-Correlation-Id", "If-Match", "If-None-Match", "Content-Type", "Authorization"]
CONTENT_TYPES = [
    b"application/json; charset=utf-16",
    b"application/json; charset=\xff",
    b"text/plain",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=x",
]
UNDECLARED_QUERY = ["unexpected", "since", "limit", "cursor"]
ITEMS_PER_BATCH = 500


@dataclass
class Target:
    service: str
    base_url: str
    app: FastAPI
    spec: dict[str, Any]
    key: str
    known: Known


@dataclass
class Operation:
    method: str
    path: str
    spec: dict[str, Any] = field(default_factory=dict)  # its OpenAPI operation, if documented


# --- the services -------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def targets(settings: Settings) -> AsyncIterator[dict[str, Target]]:
    """The six services on a database (the demo registry, an admin key) and topics of their
    own, started together; one event accepted and one application decided, so that reads of
    them go past the lookup; the console signed in to."""
    stack = new_stack()
    own = Settings(database_url=stack.database_url, topic_prefix=stack.topic_prefix)
    await create_database(stack.database)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        keys = await prepare(own, registry=[DEMO_UNITS], keys={"admin": (Role.admin, None)})
        admin = keys["admin"]
        urls = {name: f"http://127.0.0.1:{free_port()}" for name in SERVICES}
        env = stack.env() | SERVICE_ENV
        env |= {f"SANWU_{name.upper()}_URL": url for name, url in urls.items() if name != "console"}
        env["SANWU_AUDIT_URL"] = f"http://127.0.0.1:{free_port()}"  # none: the line says so
        for name, (factory, _) in SERVICES.items():
            processes.append(launch(factory, urls[name], env))
        for process, url in zip(processes, urls.values(), strict=True):
            # Six services start at once on a machine that may be busy: a generous wait.
            await asyncio.to_thread(wait_healthy, f"{url}/healthz", process, timeout=240)
        event = events.visit(VILLAGE)
        async with (
            httpx.AsyncClient(timeout=30) as client,
            httpx.AsyncClient(base_url=urls["applications"], timeout=30) as applications,
        ):
            accepted = await client.post(
                f"{urls['intake']}/v1/events", json=event, headers=bearer(admin)
            )
            assert accepted.status_code == 202, accepted.text
            application = await hostile_application(
                applications, admin, county=COUNTY, unit=VILLAGE
            )
            specs = {
                name: (await client.get(f"{url}/openapi.json")).json() for name, url in urls.items()
            }
        session, token = await hostile_console.signed_in(urls["console"], admin)
        known = Known(
            base_url=urls["console"],
            county=COUNTY,
            village=VILLAGE,
            event_id=event["event_id"],
            application_id=application["application_id"],
            applied_unit=VILLAGE,
            version=str(application["version"]),
            session=session,
            token=token,
            key=admin,
        )
        yield {
            name: Target(name, urls[name], create(None), specs[name], admin, known)
            for name, (_, create) in SERVICES.items()
        }
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        await drop_database(stack.database)
        topics = [own.events_topic, own.status_topic, own.dead_letter_topic]
        await kafka.delete_topics(own, [*topics, own.application_topic])


def launch(factory: str, url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    port = int(url.rsplit(":", 1)[1])
    return subprocess.Popen(uvicorn(factory, port), env=os.environ | env)


def operations(target: Target) -> list[Operation]:
    """Every route the app serves, with its OpenAPI operation where it has one."""
    found = []
    for route in iter_route_contexts(target.app.routes):
        if route.path is None:
            continue
        documented = target.spec.get("paths", {}).get(route.path, {})
        for method in sorted(set(route.methods or {"GET"}) - {"HEAD"}):
            found.append(Operation(method, route.path, documented.get(method.lower(), {})))
    return found


# --- a valid request for each route ---------------------------------------------------------


def valid_value(name: str, schema: dict[str, Any], target: Target) -> str:
    if name == "application_id":
        return target.known.application_id
    if schema.get("format") == "uuid" or name.endswith("_id"):
        return target.known.event_id
    if "enum" in schema:
        return str(schema["enum"][0])
    known = {"root": COUNTY, "code": VILLAGE, "unit_code": VILLAGE, "period": "2018"}
    if name in known:
        return known[name]
    if name == "name":  # a documentation asset
        return "swagger-ui.css"
    return str(schema.get("default", "10" if schema.get("type") == "integer" else "x"))


def parameters(operation: Operation, where: str) -> dict[str, dict[str, Any]]:
    found = {
        p["name"]: p.get("schema", {})
        for p in operation.spec.get("parameters", [])
        if p.get("in") == where
    }
    if where == "path":
        for part in operation.path.split("/"):
            if part.startswith("{"):
                found.setdefault(part[1:-1].split(":")[0], {})
    return found


def url_of(operation: Operation, target: Target, **replaced: str) -> str:
    values = {
        name: valid_value(name, schema, target)
        for name, schema in parameters(operation, "path").items()
    } | replaced
    url = operation.path
    for name, value in values.items():
        quoted = urllib.parse.quote(value, safe="")
        url = url.replace(f"{{{name}}}", quoted).replace(f"{{{name}:path}}", quoted)
    return target.base_url + url


def valid_query(operation: Operation, target: Target) -> dict[str, str]:
    required = {p["name"] for p in operation.spec.get("parameters", []) if p.get("required")}
    return {
        name: valid_value(name, schema, target)
        for name, schema in parameters(operation, "query").items()
        if name in required or name in ("root", "period", "level")
    }


# What an admin key's valid request adds to an operation's documented example.
ADMIN_ADDS = {"createApplication": {"county_code": COUNTY}}


def example_bodies(operation: Operation, target: Target) -> list[Any]:
    """The request examples of the operation's JSON body (of the media type or of its schema),
    with fresh event ids."""
    content = operation.spec.get("requestBody", {}).get("content", {})
    media = content.get("application/json", {})
    examples = [e["value"] for e in media.get("examples", {}).values() if "value" in e]
    if "example" in media:
        examples.append(media["example"])
    examples += schema_of(media.get("schema", {}), target.spec).get("examples", [])
    adds = ADMIN_ADDS.get(operation.spec.get("operationId", ""), {})
    found = [fresh_ids(e) | adds if isinstance(e, dict) else fresh_ids(e) for e in examples]
    return found or ([{}] if content else [])


def schema_of(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """The schema, its `$ref` followed within the document."""
    while "$ref" in schema:
        found: Any = spec
        for part in schema["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        schema = found
    return schema


def fresh_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: str(uuid.uuid4()) if k == "event_id" else fresh_ids(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fresh_ids(v) for v in value]
    return value


def as_json(body: Any) -> bytes:
    # ensure_ascii: lone surrogates travel as \ud800 escapes, as any JSON client may send them.
    return json.dumps(body).encode()


# --- one part at a time replaced ------------------------------------------------------------


def field_variants(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The body with one field at a time replaced by each hostile value, and with each
    hostile extra field."""
    for name in body:
        for value in HOSTILE_JSON:
            yield f"{name}={short(value)}", fresh_ids(body) | {name: value}
    for key in HOSTILE_KEYS:
        yield f"extra field {short(key)}", fresh_ids(body) | {key: "x"}


def body_attempts(base: Attempt, example: Any) -> Iterator[Attempt]:
    if not isinstance(example, dict):
        return
    for what, variant in field_variants(example):
        yield changed(base, f"body {what}", content=as_json(variant))
    for name, items in example.items():
        if isinstance(items, list) and items and isinstance(items[0], dict):
            # Items of a batch are judged one by one: many variants go in one request.
            variants = [v for item in items for _, v in field_variants(item)]
            for start in range(0, len(variants), ITEMS_PER_BATCH):
                chunk = variants[start : start + ITEMS_PER_BATCH]
                yield changed(
                    base,
                    f"body {name}[{start}:{start + len(chunk)}] with hostile fields",
                    content=as_json(example | {name: chunk}),
                )


def attempts(operation: Operation, target: Target) -> tuple[list[Attempt], list[Attempt]]:
    """Every hostile request for the route: those with a valid key, then those without."""
    auth = bearer(target.key)
    bodies = example_bodies(operation, target)
    query = valid_query(operation, target)
    base = Attempt(
        f"{operation.method} {operation.path}",
        operation.method,
        url_of(operation, target),
        auth | {"Content-Type": "application/json"},
        query,
        as_json(bodies[0]) if bodies else None,
    )
    keyed = [changed(base, "as valid")]
    for name in parameters(operation, "path"):
        keyed += [
            changed(base, f"path {name}={short(v)}", url=url_of(operation, target, **{name: v}))
            for v in HOSTILE_TEXT
        ]
    for name in [*parameters(operation, "query"), *UNDECLARED_QUERY]:
        keyed += [
            changed(base, f"query {name}={short(v)}", params=query | {name: v})
            for v in HOSTILE_TEXT
        ]
    for example in bodies:
        keyed += body_attempts(base, example)
    keyed += [changed(base, f"raw body {raw[:20]!r}", content=raw) for raw in HOSTILE_BODIES]
    keyed += [
        changed(base, f"content-type {ct!r}", headers=auth | {"Content-Type": ct})
        for ct in CONTENT_TYPES
    ]
    keyed += [
        changed(base, f"header {h}={v[:20]!r}", headers=base.headers | {h: v})
        for h in HEADERS
        if h != "Authorization"
        for v in HOSTILE_HEADER_VALUES
    ]
    unkeyed = [
        changed(
            base, f"header Authorization={v[:20]!r}", headers=base.headers | {"Authorization": v}
        )
        for v in HOSTILE_HEADER_VALUES
    ]
    return keyed, unkeyed


# --- sending them ---------------------------------------------------------------------------


def problem_or_plain(attempt: Attempt, response: httpx.Response) -> str | None:
    """An API's refusal is a problem+json (or uvicorn's plain text for what it cannot parse)."""
    media_type = response.headers.get("content-type", "")
    refused = response.status_code >= 400 and not from_uvicorn(response)
    if refused and "problem+json" not in media_type:
        return f"{attempt.what}: {response.status_code} as {media_type!r}"
    return None


@pytest.mark.parametrize("service", list(SERVICES))
async def test_no_hostile_input_gets_a_server_error(
    targets: dict[str, Target], service: str
) -> None:
    target = targets[service]
    routes = operations(target)
    paths = {op.path for op in routes}
    assert {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"} <= paths
    assert EXPECTED_ROUTES[service] <= paths
    if service == "console":
        failures, sent = await hostile_console.swept(target.app, target.known)
        assert sent > 50 * len(routes)
    else:
        keyed: list[Attempt] = []
        unkeyed: list[Attempt] = []
        for operation in routes:
            with_key, without_key = attempts(operation, target)
            keyed += with_key
            unkeyed += without_key
        # Failed authentications may be limited per client address: they go last.
        failures = await send_all(keyed, problem_or_plain)
        failures += await send_all(unkeyed, problem_or_plain)
        assert len(keyed) > 100 * len(routes)
    assert not failures, "\n".join(failures[:40])


# --- the cases the review found, with what they store ---------------------------------------

# Events these tests store go to the session's database: dated in no period of the campaign,
# they change no status other tests read.
NO_PERIOD = "2010-06-03T09:30:00+08:00"
TEXT_FIELDS = {
    "incident": "summary",
    "public_opinion": "platform",
    "event_voided": "reason",
    "petition_visit": "category",
}


def with_nul(kind: str) -> dict[str, Any]:
    examples = {
        "incident": events.incident(VILLAGE),
        "public_opinion": {
            "event_id": events.new_id(),
            "type": "public_opinion",
            "unit_code": VILLAGE,
            "occurred_at": events.DEFAULT_TIME,
            "platform": "微博",
            "summary": "负面炒作",
        },
        "event_voided": events.voided(events.visit(VILLAGE)),
        "petition_visit": events.visit(VILLAGE, category="征地"),
    }
    event = examples[kind]
    name = TEXT_FIELDS[kind]
    return event | {name: f"{event[name]}\x00尾"}


async def journal_has(db: Database, event_id: str) -> bool:
    async with db.engine.connect() as connection:
        found = await connection.execute(
            sa.text("SELECT 1 FROM intake.journal WHERE event_id = :id"), {"id": event_id}
        )
        return found.first() is not None


@pytest.mark.parametrize("kind", list(TEXT_FIELDS))
async def test_nul_in_text_is_refused_and_nothing_stored(
    intake: httpx.AsyncClient, keys: dict[str, str], db: Database, kind: str
) -> None:
    event = with_nul(kind)
    response = await intake.post("/v1/events", json=event, headers=bearer(keys["county_desk"]))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == [TEXT_FIELDS[kind]]
    assert "NUL" in response.json()["errors"][0]["message"]
    assert not await journal_has(db, event["event_id"])


async def test_nul_in_one_item_of_a_batch_refuses_that_item_alone(
    intake: httpx.AsyncClient, keys: dict[str, str], db: Database
) -> None:
    before, bad = events.visit(VILLAGE, occurred_at=NO_PERIOD), with_nul("incident")
    after = events.incident(VILLAGE, occurred_at=NO_PERIOD)
    bad["petitioner_ref"] = "\x00"  # not a field of an incident: named too, nothing breaks
    response = await intake.post(
        "/v1/events/batch",
        json={"events": [before, bad, after]},
        headers=bearer(keys["county_desk"]),
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"]
    assert {e["field"] for e in results[1]["error"]["errors"]} == {"summary", "petitioner_ref"}
    assert await journal_has(db, before["event_id"]) and await journal_has(db, after["event_id"])
    assert not await journal_has(db, bad["event_id"])


async def test_a_lone_surrogate_in_a_batch_is_refused_in_that_item(
    intake: httpx.AsyncClient, keys: dict[str, str], db: Database
) -> None:
    good = events.visit(VILLAGE, occurred_at=NO_PERIOD)
    body = json.dumps({"events": [{"event_id": "\ud800", "type": "incident", "\udfff": 1}, good]})
    response = await intake.post(
        "/v1/events/batch",
        content=body,
        headers=bearer(keys["county_desk"]) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "accepted"]
    assert results[0]["event_id"] is None  # not UTF-8: not echoed
    assert await journal_has(db, good["event_id"])


@pytest.mark.parametrize(
    ("file_format", "media_type"), [("pdf", PDF_MEDIA_TYPE), ("xlsx", XLSX_MEDIA_TYPE)]
)
async def test_materials_of_the_most_hostile_texts_allowed_open(
    targets: dict[str, Target], file_format: str, media_type: str
) -> None:
    applications = targets["applications"]
    async with httpx.AsyncClient(base_url=applications.base_url, timeout=60) as client:
        response = await client.get(
            f"/v1/applications/{applications.known.application_id}/materials",
            params={"format": file_format},
            headers=bearer(applications.key),
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    if file_format == "xlsx":
        sheets = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
        cells = [c for row in sheets["申报单位"].iter_rows(values_only=True) for c in row]
        assert any(isinstance(c, str) and "自评" in c and "😀" in c for c in cells)


@pytest.mark.parametrize(
    "cursor",
    [
        "ZjE6wrI",  # "f1:²": str.isdigit() holds, int() fails
        "ZjE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ",  # "f1:" and 27 nines: past a bigint
        "ZjE6١٢",  # not base64 at all
    ],
)
async def test_a_feed_cursor_with_foreign_digits_is_invalid_input(
    targets: dict[str, Target], cursor: str
) -> None:
    reporting = targets["reporting"]
    async with httpx.AsyncClient(base_url=reporting.base_url) as client:
        response = await client.get(
            "/v1/feed/status-changes",
            params={"root": COUNTY, "since": cursor},
            headers=bearer(reporting.key),
        )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "since"


@pytest.mark.parametrize(
    "sent",
    ["é-corr".encode(), b"\xff\xfe", b"x" * 65, b"two words"],
    ids=["non-ascii", "not-utf8", "too-long", "space"],
)
async def test_an_unusable_correlation_id_is_replaced_by_a_fresh_one(
    intake: httpx.AsyncClient, keys: dict[str, str], db: Database, sent: bytes
) -> None:
    event = events.visit(VILLAGE, occurred_at=NO_PERIOD)
    response = await intake.post(
        "/v1/events",
        json=event,
        headers=bearer(keys["county_desk"]) | {"X-Correlation-Id": sent},
    )
    assert response.status_code == 202, response.text
    used = response.headers["x-correlation-id"]
    assert used.isascii() and len(used) == 32 and used.encode() != sent
    async with db.engine.connect() as connection:
        stored = await connection.execute(
            sa.text("SELECT correlation_id FROM intake.journal WHERE event_id = :id"),
            {"id": event["event_id"]},
        )
        assert stored.scalar_one() == used


async def test_a_usable_correlation_id_is_kept(intake: httpx.AsyncClient) -> None:
    response = await intake.get("/healthz", headers={"X-Correlation-Id": "desk-42:run/7"})
    assert response.headers["x-correlation-id"] == "desk-42:run/7"
