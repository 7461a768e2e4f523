"""Corrections of events intake already holds: the key's scope must cover where the target is
attributed now (and the new unit of a re-attribution), or 403; a correction of a correction is
422. Either way nothing is stored, singly or as one item of a batch. Corrections are ordered by
acceptance, also within a batch."""

import json
import re
from typing import Any

import httpx
import sqlalchemy as sa

from shared.db import Database
from tests.conftest import SIBLING_VILLAGE, VILLAGE, bearer
from tests.support import events
from tests.support.intake import journal_has

OTHER_COUNTY_VILLAGE = "350101100201"  # a village of the small province's first county
VILLAGE_2 = "340722100202"  # another village of the township desk's township
UNIT_CODE = re.compile(r"\d{12}")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


async def in_outbox(db: Database, event_id: str) -> bool:
    async with db.engine.connect() as connection:
        found = await connection.execute(
            sa.text("SELECT 1 FROM intake.outbox WHERE headers->>'event_id' = :id"),
            {"id": event_id},
        )
        return found.first() is not None


async def stored_nowhere(db: Database, event_id: str) -> bool:
    return not await journal_has(db, event_id) and not await in_outbox(db, event_id)


async def refused(
    intake: httpx.AsyncClient, db: Database, *, key: str, event: dict[str, Any], status: int
) -> dict[str, Any]:
    """Posts an event that must be refused with `status`; checks it was stored nowhere."""
    body = assert_problem(await intake.post("/v1/events", json=event, headers=bearer(key)), status)
    assert await stored_nowhere(db, event["event_id"])
    return body


async def post(
    intake: httpx.AsyncClient, key: str, event: dict[str, Any], *, status: int = 202
) -> httpx.Response:
    response = await intake.post("/v1/events", json=event, headers=bearer(key))
    assert response.status_code == status, response.text
    return response


async def batch(
    intake: httpx.AsyncClient, key: str, *items: dict[str, Any]
) -> list[dict[str, Any]]:
    response = await intake.post(
        "/v1/events/batch", json={"events": list(items)}, headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


class TestScope:
    async def test_void_of_another_countys_event_is_403_and_stores_nothing(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database
    ) -> None:
        target = events.visit(OTHER_COUNTY_VILLAGE, destination="city", headcount=9)
        await post(intake, keys["admin"], target)
        # The void names a unit of the desk's own township: only the target's unit decides.
        void = events.voided(target) | {"unit_code": VILLAGE}

        body = await refused(intake, db, key=keys["township_desk"], event=void, status=403)
        [result] = await batch(intake, keys["township_desk"], void)

        # A refusal names no unit: the desk learns nothing of where the target lies.
        assert result["status"] == "rejected" and result["error"]["status"] == 403
        for problem in (body, result["error"]):
            assert not UNIT_CODE.search(json.dumps(problem)), problem

    async def test_reattribution_of_an_event_outside_the_scope_is_403(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database
    ) -> None:
        target = events.visit(SIBLING_VILLAGE)
        await post(intake, keys["sibling_desk"], target)
        # Both units the correction names lie in the desk's township; the target does not.
        move = events.reattributed(target, VILLAGE) | {"unit_code": VILLAGE_2}

        await refused(intake, db, key=keys["township_desk"], event=move, status=403)

    async def test_reattribution_to_a_unit_outside_the_scope_is_403(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database
    ) -> None:
        target = events.visit(VILLAGE)
        await post(intake, keys["township_desk"], target)
        move = events.reattributed(target, OTHER_COUNTY_VILLAGE)

        await refused(intake, db, key=keys["township_desk"], event=move, status=403)

    async def test_the_scope_is_checked_where_the_event_is_attributed_now(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database
    ) -> None:
        target = events.visit(VILLAGE)
        await post(intake, keys["township_desk"], target)
        await post(intake, keys["county_desk"], events.reattributed(target, SIBLING_VILLAGE))

        late = events.voided(target)  # its own unit is still the desk's village
        await refused(intake, db, key=keys["township_desk"], event=late, status=403)
        await post(
            intake, keys["sibling_desk"], events.voided(target) | {"unit_code": SIBLING_VILLAGE}
        )

    async def test_a_correction_accepted_before_its_target_and_outside_the_scope_moves_nothing(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database
    ) -> None:
        target = events.visit(SIBLING_VILLAGE)
        # Accepted while the target is unknown; it names only the desk's own villages.
        early = events.reattributed(target, VILLAGE) | {"unit_code": VILLAGE_2}
        await post(intake, keys["township_desk"], early)
        await post(intake, keys["sibling_desk"], target)

        # The target is still where it was sent, so its own desk may correct it...
        await post(
            intake, keys["sibling_desk"], events.voided(target) | {"unit_code": SIBLING_VILLAGE}
        )
        # ...and the desk whose re-attribution was refused may not.
        mine = events.voided(target) | {"unit_code": VILLAGE}
        await refused(intake, db, key=keys["township_desk"], event=mine, status=403)

    async def test_an_admin_key_corrects_anywhere_and_a_repeat_is_a_duplicate(
        self, intake: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        target = events.visit(OTHER_COUNTY_VILLAGE)
        await post(intake, keys["admin"], target)
        void = events.voided(target)

        await post(intake, keys["admin"], void)
        again = await post(intake, keys["admin"], void, status=200)

        assert again.json()["duplicate"] is True


class TestCorrectionOfACorrection:
    async def test_is_422_naming_the_target_and_stores_nothing(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database
    ) -> None:
        target = events.visit(VILLAGE)
        void = events.voided(target)
        await post(intake, keys["township_desk"], target)
        await post(intake, keys["township_desk"], void)

        for second in (events.voided(void), events.reattributed(void, VILLAGE_2)):
            body = assert_problem(
                await intake.post("/v1/events", json=second, headers=bearer(keys["admin"])), 422
            )
            assert body["errors"] == [
                {
                    "field": "target_event_id",
                    "message": f"{void['event_id']} is a correction (event_voided)",
                    "type": "target_is_correction",
                }
            ]
            assert await stored_nowhere(db, second["event_id"])


class TestBatch:
    async def test_refused_corrections_are_rejected_items_and_the_others_accepted(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database
    ) -> None:
        elsewhere = events.visit(OTHER_COUNTY_VILLAGE)
        mine = events.visit(VILLAGE)
        earlier_void = events.voided(mine)
        await batch(intake, keys["admin"], elsewhere, mine, earlier_void)
        fresh = events.visit(VILLAGE)
        of_a_correction = events.voided(earlier_void)
        out_of_scope = events.voided(elsewhere) | {"unit_code": VILLAGE}
        in_batch = events.reattributed(fresh, VILLAGE_2)
        of_an_item = events.voided(in_batch)  # a correction of the batch's own correction

        results = await batch(
            intake,
            keys["township_desk"],
            fresh,
            of_a_correction,
            out_of_scope,
            in_batch,
            of_an_item,
        )

        assert [r["status"] for r in results] == [
            "accepted",
            "rejected",
            "rejected",
            "accepted",
            "rejected",
        ]
        assert results[1]["error"]["status"] == 422
        assert results[1]["error"]["errors"][0]["type"] == "target_is_correction"
        assert results[2]["error"]["status"] == 403
        assert results[4]["error"]["errors"][0]["type"] == "target_is_correction"
        for rejected in (of_a_correction, out_of_scope, of_an_item):
            assert await stored_nowhere(db, rejected["event_id"])
        assert await journal_has(db, fresh["event_id"])
        assert await journal_has(db, in_batch["event_id"])

    async def test_each_item_is_accepted_after_the_one_before(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database
    ) -> None:
        target = events.visit(VILLAGE)
        await post(intake, keys["township_desk"], target)
        # Ids in descending order: acceptance, not the id, must order them.
        moves = sorted(
            (events.reattributed(target, v) for v in (VILLAGE_2, VILLAGE, VILLAGE_2)),
            key=lambda m: m["event_id"],
            reverse=True,
        )

        await batch(intake, keys["township_desk"], *moves)

        async with db.engine.connect() as connection:
            rows = await connection.execute(
                sa.text(
                    "SELECT event_id::text FROM intake.journal WHERE target_event_id = :target "
                    "ORDER BY accepted_at"
                ),
                {"target": target["event_id"]},
            )
            assert [row[0] for row in rows] == [m["event_id"] for m in moves]
