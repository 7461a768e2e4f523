"""Floods and oversized or slow requests are refused with problem+json and store nothing."""

import asyncio
import json

import httpx

from services.intake.config import IntakeSettings
from services.intake.main import create_app
from shared.db import Database
from shared.web import BodyLimitMiddleware
from tests.conftest import VILLAGE, bearer, serve
from tests.support import events
from tests.support.intake import journal_has


async def test_a_body_over_1_mib_is_413_and_stores_nothing(
    intake: httpx.AsyncClient, keys: dict[str, str], db: Database
) -> None:
    event = events.visit(VILLAGE, category="x" * 100)
    body = json.dumps({"events": [event] * 4000})
    assert len(body) > 1024 * 1024

    response = await intake.post(
        "/v1/events/batch",
        content=body,
        headers=bearer(keys["admin"]) | {"content-type": "application/json"},
    )

    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert not await journal_has(db, event["event_id"])


async def test_a_streamed_body_over_1_mib_without_length_is_413(
    intake: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"events": ['
        for _ in range(2000):
            yield b" " * 1024
        yield b"]}"

    response = await intake.post(
        "/v1/events/batch",
        content=chunks(),
        headers=bearer(keys["admin"]) | {"content-type": "application/json"},
    )

    assert response.status_code == 413


async def test_a_key_over_its_rate_limit_gets_429_with_retry_after(
    settings: object, keys: dict[str, str], db: Database
) -> None:
    app = create_app(IntakeSettings(intake_run_relay=False, rate_limit="3/minute"))
    async with serve(app) as intake:
        sent = [events.visit(VILLAGE) for _ in range(4)]
        statuses = [
            (
                await intake.post("/v1/events", json=e, headers=bearer(keys["county_desk"]))
            ).status_code
            for e in sent
        ]
        refused = await intake.post("/v1/events", json=sent[3], headers=bearer(keys["county_desk"]))
        other_key = await intake.post(
            "/v1/events", json=events.visit(VILLAGE), headers=bearer(keys["township_desk"])
        )

    assert statuses == [202, 202, 202, 429]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert not await journal_has(db, sent[3]["event_id"])
    assert other_key.status_code == 202


async def test_the_rate_limit_is_per_instance_so_two_instances_allow_twice_the_rate(
    settings: object, keys: dict[str, str], db: Database
) -> None:
    """Each instance counts in its own memory (no shared store on the request path): behind a
    load balancer, a key's budget is SANWU_RATE_LIMIT times the instances (SECURITY.md)."""
    limited = IntakeSettings(intake_run_relay=False, rate_limit="3/minute")
    async with serve(create_app(limited)) as first, serve(create_app(limited)) as second:
        sent = [events.visit(VILLAGE) for _ in range(8)]
        statuses = [
            (
                await instance.post("/v1/events", json=e, headers=bearer(keys["county_desk"]))
            ).status_code
            for instance, e in zip([first, second] * 4, sent, strict=True)
        ]

    assert statuses == [202] * 6 + [429, 429]
    assert not await journal_has(db, sent[6]["event_id"])


async def test_a_body_that_trickles_in_too_slowly_is_408() -> None:
    delivered: list[object] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        delivered.append(await receive())

    middleware = BodyLimitMiddleware(app, timeout_seconds=0.1)

    async def slow_receive():  # type: ignore[no-untyped-def]
        await asyncio.sleep(5)
        return {"type": "http.request", "body": b"{}", "more_body": False}

    sent: list[dict[str, object]] = []

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    scope = {
        "type": "http",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
    }
    await asyncio.wait_for(middleware(scope, slow_receive, send), 2)

    assert delivered == [{"type": "http.disconnect"}]
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 408
