"""PostgreSQL down: intake answers 503 quickly and stores nothing half-way; readiness goes red;
everything recovers when the database returns, without restarting the service."""

import asyncio

import httpx
import pytest

from shared.db import Database
from tests.conftest import VILLAGE, bearer
from tests.support import events
from tests.support.intake import journal_has
from tests.support.stack import ROOT

pytestmark = pytest.mark.faults
STACK = str(ROOT / "deploy" / "stack.sh")


async def stack(command: str) -> None:
    process = await asyncio.create_subprocess_exec(STACK, command)
    assert await process.wait() == 0


async def test_database_down_is_a_quick_503_and_recovers_without_restart(
    intake: httpx.AsyncClient, keys: dict[str, str], db: Database
) -> None:
    before = events.visit(VILLAGE)
    assert (
        await intake.post("/v1/events", json=before, headers=bearer(keys["admin"]))
    ).status_code == 202

    await stack("pg-stop")
    try:
        during = events.visit(VILLAGE)
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await intake.post("/v1/events", json=during, headers=bearer(keys["admin"]))
        elapsed = loop.time() - started
        ready = await intake.get("/readyz")
    finally:
        await stack("pg-start")

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "retry-after" in response.headers
    assert elapsed < 10, "a desk must not hang while the database is away"
    assert ready.status_code == 503 and ready.json()["checks"]["database"] is False

    after = events.visit(VILLAGE)
    recovered = await intake.post("/v1/events", json=after, headers=bearer(keys["admin"]))
    assert recovered.status_code == 202, recovered.text
    assert (await intake.get("/readyz")).status_code == 200
    assert await journal_has(db, before["event_id"]) and await journal_has(db, after["event_id"])
    assert not await journal_has(db, during["event_id"])
