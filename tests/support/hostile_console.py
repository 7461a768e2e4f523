"""Hostile input to the console (tests/security/test_hostile_inputs.py): its pages and forms
found in the app itself, and for each a request as a browser signed in as the admin would
send it; then one part at a time replaced by something hostile: each path and query parameter
(also undecodable percent-escapes), each field of each form (huge, not UTF-8, digits other
than ASCII, control characters), the whole body, the cookie and the headers a client controls.

An answer is fine when it is no server error, and a refusal is a page (HTML) saying what
happened, not a stack trace."""

import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from tests.support.console import TOKEN
from tests.support.hostile import Attempt, changed, from_uvicorn, send_all, short

SESSION_COOKIE = "sanwu_console"
SIGNIN_COOKIE = "sanwu_console_signin"

TEXT = [
    "",
    "\x00",
    "\x01\x02\x1b\x7f",
    "\t\r\n",
    "x" * 10_000,
    "²",
    "٣",
    "١٢٣٤٥٦٧٨٩٠١٢",
    "３４０７２２１００２０１",
    "\u202e340722100201",
    "😀" * 50,
    "' OR '1'='1",
    "<script>alert(1)</script>",
    "../../../etc/passwd",
    "-1",
    "99999999999999999999999999999",
]
# Percent-escapes that decode to no UTF-8 (a lone byte, a truncated sequence, a surrogate).
UNDECODABLE = ["%FF%FE", "%C3", "%ED%A0%80", "%C0%AF"]
FORM_TEXT = [*TEXT, "x" * 300_000]
FORM_BODIES = [
    b"\xff\xfe\x00",
    b"=&=&&==",
    b"%",
    b"a=%ZZ",
    "&".join(f"f{i}=1" for i in range(1500)).encode(),  # past the parser's field limit
    b"x=" + b"y" * 1_100_000,  # past the body limit
    b'{"csrf_token": 1}',
]
CONTENT_TYPES = [
    b"application/x-www-form-urlencoded; charset=\xff",
    b"multipart/form-data; boundary=x",
    b"multipart/form-data",
    b"application/json",
    b"text/plain",
]
COOKIES = [
    f"{SESSION_COOKIE}=".encode(),
    f"{SESSION_COOKIE}=\xff".encode("latin-1"),
    f"{SESSION_COOKIE}=".encode() + b"x" * 7000,
    f"{SESSION_COOKIE}=é😀".encode(),
    b"\xff\xfe",
]
UNDECLARED_QUERY = ["unexpected"]


@dataclass(frozen=True)
class Known:
    """What a valid request names: units, a period, an event and an application with the
    one unit it applies with, and the signed-in admin's session."""

    base_url: str
    county: str
    village: str
    event_id: str
    application_id: str
    applied_unit: str
    version: str  # the application's
    session: str
    token: str
    key: str

    def path_value(self, name: str) -> str:
        return {
            "code": self.applied_unit,
            "event_id": self.event_id,
            "application_id": self.application_id,
            "stage": "review",
            "period": "2018",
            "name": "swagger-ui.css",
            "path": "console.css",
        }.get(name, "x")

    def query_value(self, name: str) -> str:
        return {
            "unit": self.county,
            "period": "2018",
            "sort": "code",
            "order": "asc",
            "q": "村",
            "level": "village",
            "format": "xlsx",
            "type": "petition_visit",
            "notice": "expired",
        }.get(name, "x")


async def signed_in(base_url: str, key: str) -> tuple[str, str]:
    """A session of the key on the console at `base_url`: its cookie's value and its token."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        form = await client.get("/signin")
        found = TOKEN.search(form.text)
        assert found is not None, form.text
        done = await client.post("/signin", data={"csrf_token": found.group(1), "key": key})
        assert done.status_code == 303, done.text
        page = await client.get("/record")
        token = TOKEN.search(page.text)
        assert token is not None, page.text
        return client.cookies[SESSION_COOKIE], token.group(1)


@dataclass(frozen=True)
class Page:
    method: str
    path: str
    query: tuple[str, ...]


def pages(app: FastAPI) -> list[Page]:
    """Every route of the console, with the query parameters it reads."""
    found = []
    for route in iter_route_contexts(app.routes):
        if route.path is None:
            continue
        dependant = getattr(route.original_route, "dependant", None)
        query = tuple(sorted(_query_names(dependant))) if dependant else ()
        path = route.path if route.methods else f"{route.path}/{{path}}"  # a mount
        for method in sorted(set(route.methods or {"GET"}) - {"HEAD"}):
            found.append(Page(method, path, query))
    return found


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _path_names(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


def url_of(page: Page, known: Known, **replaced: str) -> str:
    values = {name: known.path_value(name) for name in _path_names(page.path)} | replaced
    url = page.path
    for name, value in values.items():
        quoted = urllib.parse.quote(value, safe="")
        url = url.replace(f"{{{name}}}", quoted).replace(f"{{{name}:path}}", quoted)
    return known.base_url + url


def form_of(page: Page, known: Known) -> dict[str, str]:
    """The fields the route's own page posts, but the token."""
    code = known.applied_unit
    return {
        "/record": {
            "event_id": str(uuid.uuid4()),
            "type": "petition_visit",
            "unit_code": known.village,
            "occurred_at": "2018-06-03T09:30",
            "destination_level": "city",
            "headcount": "1",
            "category": "征地",
        },
        "/applications": {
            "period": "2018",
            "unit": code,
            f"self_evaluation-{code}": "全年无越级上访",
            f"rectifications-{code}": "建立台账",
        },
        "/applications/{application_id}/submit": {"version": known.version},
        "/applications/{application_id}/{stage}": {
            "version": known.version,
            f"decision-{code}": "approve",
            f"reason-{code}": "",
        },
        "/titles/{code}/{period}/revoke": {
            "version": known.version,
            "application_id": known.application_id,
            f"revoke-reason-{code}": "发生极端事件",
        },
        "/signin": {"key": known.key},
    }.get(page.path, {})


def encoded(fields: dict[str, str]) -> bytes:
    # surrogatepass: a lone surrogate goes out as the bytes it would be, which are no UTF-8.
    return urllib.parse.urlencode(fields, encoding="utf-8", errors="surrogatepass").encode()


def attempts(page: Page, known: Known, *, session: str, token: str) -> Iterator[Attempt]:
    """Every hostile request for the page, with the session's cookie and token."""
    cookie = {"Cookie": f"{SESSION_COOKIE}={session}"}
    if page.path == "/signin":
        cookie = {"Cookie": f"{SIGNIN_COOKIE}={token}"}
    form = form_of(page, known) | {"csrf_token": token} if page.method == "POST" else {}
    query = {name: known.query_value(name) for name in page.query}
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    base = Attempt(
        f"{page.method} {page.path}",
        page.method,
        url_of(page, known),
        cookie | (form_type if form else {}),
        query,
        encoded(form) if form else None,
    )
    yield changed(base, "as valid")
    for name in _path_names(page.path):
        for value in TEXT:
            yield changed(
                base, f"path {name}={short(value)}", url=url_of(page, known, **{name: value})
            )
    for name in [*page.query, *UNDECLARED_QUERY]:
        for value in TEXT:
            yield changed(base, f"query {name}={short(value)}", params=query | {name: value})
        rest = urllib.parse.urlencode({k: v for k, v in query.items() if k != name})
        for raw in UNDECODABLE:
            url = f"{base.url}?{rest}&{name}={raw}"
            yield changed(base, f"query {name}={raw}", url=url, params=None)
    if page.method == "POST":
        yield from _form_attempts(base, form)
    for cookie_value in COOKIES:
        headers = base.headers | {"Cookie": cookie_value}
        yield changed(base, f"cookie {cookie_value[:20]!r}", headers=headers)
    for correlation in (b"\xff\xfe", b"x" * 8000, "é😀".encode()):
        headers = base.headers | {"X-Correlation-Id": correlation}
        yield changed(base, f"correlation id {correlation[:20]!r}", headers=headers)


def _form_attempts(base: Attempt, form: dict[str, str]) -> Iterator[Attempt]:
    for name in form:
        for value in FORM_TEXT:
            yield changed(
                base, f"field {name}={short(value)}", content=encoded(form | {name: value})
            )
        for escape in UNDECODABLE:
            body = encoded(form_without(form, name)) + f"&{name}={escape}".encode()
            yield changed(base, f"field {name}={escape}", content=body)
        yield changed(base, f"without {name}", content=encoded(form_without(form, name)))
    for name in ("\x00", "x" * 10_000, "decision-\x00", "unit"):
        yield changed(base, f"extra field {short(name)}", content=encoded(form | {name: "²"}))
    for body in FORM_BODIES:
        yield changed(base, f"raw body {body[:20]!r}", content=body)
    for content_type in CONTENT_TYPES:
        headers = base.headers | {"Content-Type": content_type}
        yield changed(base, f"content-type {content_type!r}", headers=headers)


def form_without(form: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in form.items() if k != name}


def judged(attempt: Attempt, response: httpx.Response) -> str | None:
    """A refusal is a page of the console's; but uvicorn's plain text for what it cannot
    parse, and the body limit's problem+json, enforced before any page is reached."""
    media_type = response.headers.get("content-type", "")
    too_large = response.status_code == 413 and "problem+json" in media_type
    if response.status_code < 400 or from_uvicorn(response) or too_large:
        return None
    if not media_type.startswith("text/html") or "<title>" not in response.text:
        return f"{attempt.what}: {response.status_code} as {media_type!r}, not a page"
    return None


async def swept(app: FastAPI, known: Known) -> tuple[list[str], int]:
    """Every page and form of the console, signed in as `known` says; signing out on a session
    of its own and signing in (whose failures the address's limit counts) last. What went
    wrong, and how many requests were sent."""
    found = pages(app)
    signed_in_pages = [p for p in found if p.path not in ("/signout", "/signin")]
    leaving = await signed_in(known.base_url, known.key)
    sent = 0
    failures: list[str] = []
    for group, (session, token) in (
        (signed_in_pages, (known.session, known.token)),
        ([p for p in found if p.path == "/signout"], leaving),
        ([p for p in found if p.path == "/signin"], (known.session, known.token)),
    ):
        tried = [a for page in group for a in attempts(page, known, session=session, token=token)]
        failures += await send_all(tried, judged)
        sent += len(tried)
    return failures, sent
