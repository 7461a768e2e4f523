"""A batch's dry run answers what the batch would and stores nothing; a batch whose ids are
seeds stores each event under an id keyed with the server's secret, the same for the same
seed, and traceable to its seed by no one without the secret."""

import uuid
from typing import Any

import httpx
import sqlalchemy as sa

from services.intake.config import IntakeSettings
from services.intake.main import create_app
from shared.db import Database
from tests.conftest import SIBLING_VILLAGE, VILLAGE, bearer, serve
from tests.support import events
from tests.support.intake import journal_has

# A village of the township desk's township no other intake test posts for.
VILLAGE_3 = "340722100203"


async def batch(
    intake: httpx.AsyncClient, key: str, items: list[dict[str, Any]], **params: str
) -> list[dict[str, Any]]:
    response = await intake.post(
        "/v1/events/batch", json={"events": items}, headers=bearer(key), params=params
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def in_outbox(db: Database, event_id: str) -> bool:
    async with db.engine.connect() as connection:
        found = await connection.execute(
            sa.text("SELECT 1 FROM intake.outbox WHERE headers->>'event_id' = :id"),
            {"id": event_id},
        )
        return found.first() is not None


async def test_a_dry_run_answers_as_the_batch_would_and_stores_nothing(
    intake: httpx.AsyncClient, keys: dict[str, str], db: Database
) -> None:
    desk = keys["township_desk"]
    known = events.rating(VILLAGE_3, matter_ref=f"事项-{uuid.uuid4().hex}")
    await batch(intake, desk, [known])
    items = [
        events.rating(VILLAGE_3),
        events.rating(SIBLING_VILLAGE),  # outside the desk's township
        known,  # a repeat
        known | {"rating": "dissatisfied"},  # the same id, other content
    ]

    dry = await batch(intake, desk, items, dry_run="true")

    assert [(r["status"], (r["error"] or {}).get("status")) for r in dry] == [
        ("accepted", None),
        ("rejected", 403),
        ("duplicate", None),
        ("rejected", 409),
    ]
    assert [r["event_id"] for r in dry] == [i["event_id"] for i in items]
    assert not await journal_has(db, items[0]["event_id"])
    assert not await in_outbox(db, items[0]["event_id"])
    # The batch itself answers the same, and stores the one accepted.
    real = await batch(intake, desk, items)
    assert [r["status"] for r in real] == [r["status"] for r in dry]
    assert await journal_has(db, items[0]["event_id"])


async def test_ids_keyed_from_seeds_are_stable_and_not_the_seeds(
    intake: httpx.AsyncClient, keys: dict[str, str], db: Database
) -> None:
    desk = keys["township_desk"]
    seeds = [events.rating(VILLAGE, matter_ref="信访事项2018-0042") for _ in range(2)]
    bad = events.rating(VILLAGE) | {"rating": "ecstatic"}

    first = await batch(intake, desk, [*seeds, bad], derive_event_ids="true")
    again = await batch(intake, desk, seeds, derive_event_ids="true")

    ids = [r["event_id"] for r in first[:2]]
    assert [r["status"] for r in first] == ["accepted", "accepted", "rejected"]
    assert [r["status"] for r in again] == ["duplicate", "duplicate"]
    assert [r["event_id"] for r in again] == ids
    for seed, event_id in zip(seeds, ids, strict=True):
        assert event_id != seed["event_id"] and uuid.UUID(event_id).version == 8
        assert await journal_has(db, event_id) and not await journal_has(db, seed["event_id"])
    stored = await intake.get(f"/v1/events/{ids[0]}", headers=bearer(desk))
    assert stored.status_code == 200 and stored.json()["matter_ref"].startswith("hmac-sha256:")
    # A rejected item names the id its seed would have had, never the seed.
    assert first[2]["event_id"] not in (bad["event_id"], None)


async def test_keyed_ids_follow_the_secret(intake: httpx.AsyncClient, keys: dict[str, str]) -> None:
    desk = keys["township_desk"]
    seed = events.rating(VILLAGE, matter_ref="信访事项2018-0043")
    other = IntakeSettings(intake_run_relay=False, petitioner_hash_secret="another-secret-" * 3)

    here = await batch(intake, desk, [seed], derive_event_ids="true", dry_run="true")
    async with serve(create_app(other)) as elsewhere:
        there = await batch(elsewhere, desk, [seed], derive_event_ids="true", dry_run="true")

    assert here[0]["status"] == there[0]["status"] == "accepted"
    assert here[0]["event_id"] != there[0]["event_id"]
