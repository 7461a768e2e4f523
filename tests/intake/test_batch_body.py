"""A batch's body is parsed fast (orjson) and still reads as JSON always read here: an item
that only the standard library's parser takes (a lone surrogate in an escape) is rejected on
its own, and the rest of the batch is stored."""

import json

import httpx

from shared.db import Database
from tests.conftest import VILLAGE, bearer
from tests.support import events
from tests.support.intake import journal_has


async def test_an_item_with_a_lone_surrogate_is_rejected_alone(
    intake: httpx.AsyncClient, keys: dict[str, str], db: Database
) -> None:
    good = events.visit(VILLAGE)
    odd = events.visit(VILLAGE) | {"event_id": "\ud800"}
    body = json.dumps({"events": [odd, good]})  # ASCII, the surrogate as an escape

    response = await intake.post(
        "/v1/events/batch",
        content=body.encode(),
        headers=bearer(keys["admin"]) | {"Content-Type": "application/json"},
    )

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected", "accepted"]
    assert results[0]["event_id"] is None  # cannot be echoed as text
    assert await journal_has(db, good["event_id"])


async def test_a_body_that_is_not_json_is_a_problem_naming_it(
    intake: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    response = await intake.post(
        "/v1/events/batch",
        content=b'{"events": [',
        headers=bearer(keys["admin"]) | {"Content-Type": "application/json"},
    )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
