"""Sending hostile requests (tests/security/test_hostile_inputs.py): each attempt names what it
changed of a valid request, and every answer is judged; no answer may be a server error or a
dropped connection."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.app import bearer

CONCURRENCY = 6


@dataclass(frozen=True)
class Attempt:
    what: str
    method: str
    url: str
    headers: dict[str, Any]
    params: dict[str, str] | None = None
    content: bytes | None = None


def changed(base: Attempt, what: str, **changes: Any) -> Attempt:
    """The attempt with some of its parts replaced, named by what was replaced."""
    return Attempt(**(base.__dict__ | changes | {"what": f"{base.what} {what}"}))


def short(value: Any) -> str:
    return repr(value)[:40]


# What is wrong with an answer (None: nothing); the attempt names it.
Judge = Callable[[Attempt, httpx.Response], str | None]


def server_error(attempt: Attempt, response: httpx.Response | Exception) -> str | None:
    if isinstance(response, Exception):
        return f"{attempt.what}: {type(response).__name__} {response}"
    if response.status_code >= 500:
        return f"{attempt.what}: {response.status_code} {response.text[:200]}"
    return None


def from_uvicorn(response: httpx.Response) -> bool:
    """uvicorn answers a request it cannot parse (a header past its limit) in plain text."""
    return response.headers.get("content-type", "").startswith("text/plain")


async def send_all(attempts: list[Attempt], judge: Judge) -> list[str]:
    """Every attempt sent, a few at a time; what went wrong with the answers."""
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(timeout=60) as client:

        async def send(attempt: Attempt) -> str | None:
            async with limit:
                try:
                    response = await client.request(
                        attempt.method,
                        attempt.url,
                        headers=attempt.headers,
                        params=attempt.params,
                        content=attempt.content,
                    )
                except httpx.HTTPError as exc:
                    return server_error(attempt, exc)
                # Cookies the answers set stay out of the next attempts' requests.
                client.cookies.clear()
                return server_error(attempt, response) or judge(attempt, response)

        found = await asyncio.gather(*(send(a) for a in attempts))
    return [f for f in found if f is not None]


# The texts of an application as hostile as the API takes them (no NUL: refused), at the
# longest allowed: control characters, right-to-left overrides, emoji, formula-like cells.
HOSTILE_PROSE = "\x01\x08\x0b\x1b\x7f\u202e自评\u202c😀\t\r\n=cmd|' /C calc'!A0 ' OR '1'='1 ²٣ "
SELF_EVALUATION = (HOSTILE_PROSE * 1000)[:20_000]
RECTIFICATIONS = [(HOSTILE_PROSE * 200)[:4_000], "=1+1", "@SUM(A1)", "\u200b"]
REASON = (HOSTILE_PROSE * 100)[:2_000]


async def hostile_application(
    client: httpx.AsyncClient, key: str, *, county: str, unit: str
) -> dict[str, Any]:
    """An application of the unit for 2018, its texts hostile, decided: the unit awarded (the
    applications service at `client`, an admin's key)."""
    auth = bearer(key)
    proposed = {"code": unit, "self_evaluation": SELF_EVALUATION, "rectifications": RECTIFICATIONS}
    body = {"period": "2018", "county_code": county, "units": [proposed]}
    response = await client.post("/v1/applications", json=body, headers=auth)
    assert response.status_code == 201, response.text
    for action, decision in (("submit", None), ("review", "approve"), ("award", "award")):
        application = response.json()
        decided = {"decisions": [{"code": unit, "decision": decision, "reason": REASON}]}
        response = await client.post(
            f"/v1/applications/{application['application_id']}/{action}",
            json=decided if decision else None,
            headers=auth | {"If-Match": str(application["version"])},
        )
        assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    assert found["state"] == "decided"
    return found
