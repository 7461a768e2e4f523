"""The batch limit comes from SANWU_MAX_BATCH_EVENTS; the OpenAPI document shows the default."""

from typing import Any

import httpx

from services.intake.config import DEFAULT_MAX_BATCH_EVENTS, IntakeSettings
from services.intake.main import create_app
from shared.db import Database
from tests.conftest import VILLAGE, bearer, serve
from tests.support import events
from tests.support.intake import journal_has


async def post_with_limit_of_3(batch: list[dict[str, Any]], *, key: str) -> httpx.Response:
    async with serve(create_app(IntakeSettings(intake_run_relay=False, max_batch_events=3))) as app:
        return await app.post("/v1/events/batch", json={"events": batch}, headers=bearer(key))


async def test_a_batch_over_the_configured_limit_is_422_naming_it_and_stores_nothing(
    settings: object, keys: dict[str, str], db: Database
) -> None:
    batch = [events.visit(VILLAGE) for _ in range(4)]
    response = await post_with_limit_of_3(batch, key=keys["admin"])

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "urn:sanwu:problem:validation"
    assert "at most 3 events" in body["detail"]
    assert body["errors"] == [
        {"field": "events", "message": "at most 3 events", "type": "too_long"}
    ]
    for event in batch:
        assert not await journal_has(db, event["event_id"])


async def test_a_batch_at_the_configured_limit_is_accepted(
    keys: dict[str, str], db: Database
) -> None:
    batch = [events.visit(VILLAGE, headcount=n) for n in (1, 2, 3)]
    response = await post_with_limit_of_3(batch, key=keys["admin"])

    assert response.status_code == 200, response.text
    assert [r["status"] for r in response.json()["results"]] == ["accepted"] * 3
    assert await journal_has(db, batch[-1]["event_id"])


async def test_the_openapi_document_states_the_default_limit(intake: httpx.AsyncClient) -> None:
    schema = (await intake.get("/openapi.json")).json()["components"]["schemas"]["BatchIn"]

    assert schema["properties"]["events"]["maxItems"] == DEFAULT_MAX_BATCH_EVENTS == 1000
