"""Unknown keys, clients trying keys, an exhausted pool, trickling bodies and big batches
cost a bounded amount and are refused with problem+json, storing nothing."""

import asyncio
import json
import secrets
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from prometheus_client import REGISTRY

from services.intake.config import IntakeSettings
from services.intake.main import create_app
from shared.access import service as access_service
from shared.access.models import Role
from shared.config import Settings
from shared.db import Database
from shared.errors import PoolExhausted
from tests.conftest import TOWNSHIP, VILLAGE, bearer, serve
from tests.security.live import INTAKE, live_service
from tests.support import events
from tests.support.intake import journal_has
from tests.support.waiting import wait_until

PROBLEM_JSON = "application/problem+json"


def unknown_key() -> str:
    """Well-formed, so it costs a lookup unless remembered; no such key exists."""
    return f"sanwu_{secrets.token_hex(6)}_{secrets.token_urlsafe(32).replace('_', '-')}"


def lookups(found: bool) -> float:
    value = REGISTRY.get_sample_value(
        "sanwu_access_key_lookups_total", {"found": str(found).lower()}
    )
    return value or 0.0


def listening_app(**settings: Any) -> FastAPI:
    return create_app(IntakeSettings(intake_run_relay=False, **settings))


async def new_key(db: Database, role: Role = Role.desk) -> str:
    async with db.engine.begin() as connection:
        return await access_service.create(connection, role=role, scope_code=TOWNSHIP)


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["status"] == status


class TestUnknownKeys:
    """With the app's only database connection held elsewhere, a lookup could not finish:
    an answer within a second proves the database was not asked."""

    async def test_an_unknown_key_is_looked_up_once_then_remembered(
        self, settings: Settings
    ) -> None:
        app = listening_app(database_pool_size=1, database_pool_timeout_seconds=3)
        key = unknown_key()
        async with serve(app) as intake:
            await wait_until(
                lambda: app.state.keys.listening, timeout=5, message="the key listener"
            )
            before = lookups(found=False)
            first = await intake.post("/v1/events", json=events.visit(VILLAGE), headers=bearer(key))
            async with app.state.db.connection():
                again = [
                    await asyncio.wait_for(
                        intake.post("/v1/events", json=events.visit(VILLAGE), headers=bearer(key)),
                        1,
                    )
                    for _ in range(20)
                ]

        assert_problem(first, 401)
        assert {a.status_code for a in again} == {401}
        assert lookups(found=False) - before == 1

    async def test_a_malformed_key_costs_no_lookup(self, settings: Settings) -> None:
        app = listening_app(database_pool_size=1, database_pool_timeout_seconds=3)
        malformed = [
            "sanwu_nothex000000_" + "A" * 43,
            "sanwu_0123456789ab_short",
            "sanwu_" + "0" * 400 + "_" + "A" * 43,
            "sanwu_0123456789ab_" + "A" * 42 + "_",
        ]
        async with serve(app) as intake, app.state.db.connection():
            before = lookups(found=False) + lookups(found=True)
            answers = [
                await asyncio.wait_for(
                    intake.post("/v1/events", json=events.visit(VILLAGE), headers=bearer(key)), 1
                )
                for key in malformed
            ]

        assert {a.status_code for a in answers} == {401}
        assert lookups(found=False) + lookups(found=True) == before

    async def test_a_key_created_after_its_id_was_found_unknown_works_at_once(
        self, settings: Settings, db: Database
    ) -> None:
        """Unknown ids are remembered, but a new key's insert is announced like any change."""
        app = listening_app()
        key_id, secret = secrets.token_hex(6), "B" * 43
        key = f"sanwu_{key_id}_{secret}"
        event = events.visit(VILLAGE)
        async with serve(app) as intake:
            await wait_until(
                lambda: app.state.keys.listening, timeout=5, message="the key listener"
            )
            unknown = await intake.post("/v1/events", json=event, headers=bearer(key))
            async with db.engine.begin() as connection:  # a key with that id, as `create` makes
                await connection.execute(
                    sa.text(
                        "INSERT INTO access.api_keys (key_id, secret_hash, role, scope_code) "
                        "VALUES (:id, encode(sha256(convert_to(:secret, 'UTF8')), 'hex'), "
                        "'desk', :scope)"
                    ),
                    {"id": key_id, "secret": secret, "scope": TOWNSHIP},
                )
            accepted = await accepted_within(intake, event, key, seconds=2.0)

        assert_problem(unknown, 401)
        assert accepted.status_code == 202


async def accepted_within(
    intake: httpx.AsyncClient, event: dict[str, Any], key: str, *, seconds: float
) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        response = await intake.post("/v1/events", json=event, headers=bearer(key))
        if response.status_code != 401 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.01)


class TestFailedAuthenticationsPerAddress:
    async def test_an_address_past_its_failures_gets_429_and_no_more_lookups(
        self, settings: Settings, db: Database
    ) -> None:
        app = listening_app(auth_failure_limit="5/minute")
        good = await new_key(db)
        refused_event = events.visit(VILLAGE)
        async with serve(app) as intake:
            await wait_until(
                lambda: app.state.keys.listening, timeout=5, message="the key listener"
            )
            first = await intake.post(
                "/v1/events", json=events.visit(VILLAGE), headers=bearer(good)
            )
            before = lookups(found=False)
            failures = [
                await intake.post("/v1/events", json=events.visit(VILLAGE), headers=bearer(k))
                for k in [unknown_key() for _ in range(5)]
            ]
            throttled = await intake.post(
                "/v1/events", json=refused_event, headers=bearer(unknown_key())
            )
            looked_up = lookups(found=False) - before
            known = await intake.post(
                "/v1/events", json=events.visit(VILLAGE), headers=bearer(good)
            )
            other_address = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=("10.9.8.7", 40000)),
                base_url="http://test",
            )
            async with other_address:
                elsewhere = await other_address.post(
                    "/v1/events", json=events.visit(VILLAGE), headers=bearer(unknown_key())
                )

        assert first.status_code == 202
        assert [f.status_code for f in failures] == [401] * 5
        assert_problem(throttled, 429)
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
        assert looked_up == 5
        assert not await journal_has(db, refused_event["event_id"])
        assert known.status_code == 202  # a key already known costs nothing: still served
        assert_problem(elsewhere, 401)  # another address has its own budget


class TestPool:
    async def test_an_exhausted_pool_answers_a_quick_503_and_stores_nothing(
        self, settings: Settings, db: Database
    ) -> None:
        app = listening_app(database_pool_size=1, database_pool_timeout_seconds=0.5)
        key = await new_key(db)  # not yet known to the app: it needs a connection
        event = events.visit(VILLAGE)
        async with serve(app) as intake:
            held: Database = app.state.db
            async with held.connection():  # the pool's one connection, busy
                started = time.monotonic()
                response = await asyncio.wait_for(
                    intake.post("/v1/events", json=event, headers=bearer(key)), 5
                )
                elapsed = time.monotonic() - started
            after = await intake.post("/v1/events", json=event, headers=bearer(key))

        assert_problem(response, 503)
        assert "busy" in response.json()["detail"]
        assert response.headers["retry-after"]
        assert elapsed < 2.0
        assert after.status_code == 202  # and served again once a connection is free

    async def test_a_session_that_waits_past_the_pool_timeout_is_pool_exhausted(
        self, settings: Settings
    ) -> None:
        small = Settings(database_pool_size=1, database_pool_timeout_seconds=0.3)
        db = Database.from_settings(small)
        try:
            async with AsyncExitStack() as stack:
                for _ in range(1 + 5):  # the pool and its overflow
                    session = await stack.enter_async_context(db.session())
                    await session.execute(sa.text("SELECT 1"))
                started = time.monotonic()
                with pytest.raises(PoolExhausted):
                    async with db.session() as session:
                        await session.execute(sa.text("SELECT 1"))
                elapsed = time.monotonic() - started
        finally:
            await db.dispose()
        assert elapsed < 2.0


class TestBodyDeadline:
    async def test_a_body_trickling_in_under_the_per_chunk_time_is_cut_at_the_deadline(
        self, settings: Settings, keys: dict[str, str], db: Database, tmp_path: Path
    ) -> None:
        """A real client sends a byte every 0.25 s, each well within the limit (1.5 s), so
        only a deadline on the whole body stops it."""
        event = events.visit(VILLAGE)
        body = json.dumps(event).encode()
        env = {"SANWU_INTAKE_RUN_RELAY": "false", "SANWU_REQUEST_BODY_TIMEOUT_SECONDS": "1.5"}
        with live_service(INTAKE, env=env, log_path=tmp_path / "intake.log") as service:
            reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
            writer.write(
                b"POST /v1/events HTTP/1.1\r\nHost: intake\r\n"
                b"Content-Type: application/json\r\n"
                + f"Authorization: Bearer {keys['county_desk']}\r\n".encode()
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
            )
            await writer.drain()
            trickle = asyncio.create_task(send_slowly(writer, body, every=0.25))
            started = time.monotonic()
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 6)
                elapsed = time.monotonic() - started
                length = int(header(head, b"content-length"))
                answer = json.loads(await asyncio.wait_for(reader.readexactly(length), 2))
            finally:
                trickle.cancel()
                await asyncio.gather(trickle, return_exceptions=True)
                writer.close()

        assert head.startswith(b"HTTP/1.1 408")
        assert header(head, b"content-type").startswith(PROBLEM_JSON)
        assert answer["status"] == 408
        assert 1.0 < elapsed < 4.0
        assert not await journal_has(db, event["event_id"])


async def send_slowly(writer: asyncio.StreamWriter, body: bytes, *, every: float) -> None:
    for i in range(len(body)):
        writer.write(body[i : i + 1])
        await writer.drain()
        await asyncio.sleep(every)


def header(head: bytes, name: bytes) -> str:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip().decode()
    raise AssertionError(f"no {name!r} header in {head!r}")


class TestBatchesCountEvents:
    async def test_a_batch_costs_its_number_of_events(
        self, settings: Settings, db: Database
    ) -> None:
        """Budget 10: a refused request still costs the one its authentication counted."""
        app = listening_app(rate_limit="10/minute")
        key = await new_key(db)
        too_big = [events.visit(VILLAGE) for _ in range(11)]
        fits = [events.visit(VILLAGE) for _ in range(6)]
        over = [events.visit(VILLAGE) for _ in range(4)]
        last_one = [events.visit(VILLAGE)]
        async with serve(app) as intake:

            async def post_batch(items: list[dict[str, Any]]) -> httpx.Response:
                return await intake.post(
                    "/v1/events/batch", json={"events": items}, headers=bearer(key)
                )

            async def post_one() -> httpx.Response:
                return await intake.post(
                    "/v1/events", json=events.visit(VILLAGE), headers=bearer(key)
                )

            refused_whole = await post_batch(too_big)  # 11 > 10: spent 1
            accepted = await post_batch(fits)  # spent 7
            refused_rest = await post_batch(over)  # 7 + 4 > 10: spent 8
            single = await post_one()  # spent 9
            exact = await post_batch(last_one)  # spent 10
            spent = await post_one()

        assert_problem(refused_whole, 429)
        assert int(refused_whole.headers["retry-after"]) >= 1
        assert "11 events" in refused_whole.json()["detail"]
        assert [r["status"] for r in accepted.json()["results"]] == ["accepted"] * 6
        assert_problem(refused_rest, 429)
        for event in too_big + over:
            assert not await journal_has(db, event["event_id"])
        assert single.status_code == 202
        assert [r["status"] for r in exact.json()["results"]] == ["accepted"]
        assert_problem(spent, 429)
