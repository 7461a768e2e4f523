"""GET /v1/events/{event_id}/effect: what the rules made of an event (applied, with every unit
and period it counts against, or voided) or of a correction (pending, applied, refused with
why); dead-lettered events; 404 for what evaluation never saw; any key within its scope."""

import asyncio
import json
import re
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from shared import kafka
from shared.access.models import Role
from shared.campaign import SHANGHAI, system_now
from shared.config import Settings
from shared.db import Database
from tests.conftest import COUNTY
from tests.evaluation.conftest import Evaluation
from tests.evaluation.helpers import (
    COUNTIES,
    Desk,
    World,
    Worlds,
    create_key,
    effect,
    wait_applied,
)
from tests.support import events

pytestmark = pytest.mark.usefixtures("evaluation")


@pytest.fixture(scope="module")
def world(worlds: Worlds) -> World:
    """One township for the module: each test reads the effect of its own events only."""
    return worlds.township()


@pytest.fixture(scope="module")
def away(world: World, worlds: Worlds) -> tuple[str, str]:
    """A township and one of its villages in another county, where only corrections are
    posted (they count against nothing)."""
    registry = worlds.registry
    county = next(c for c in COUNTIES if c != world.county)
    township = registry.children(county)[0]
    return township, registry.children(township)[0]


def eight_to_the_city(world: World) -> dict[str, Any]:
    """Marks its village (skip-level to the city, 5 or more) and township (5 or more), not its
    county."""
    return events.visit(
        world.village, destination="city", headcount=8, skip_level=True, occurred_at=world.at()
    )


async def read(evaluation: Evaluation, event_id: str, key: str) -> dict[str, Any]:
    response = await effect(evaluation.client, event_id, key)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def publish(settings: Settings, value: bytes, *, headers: list[tuple[str, bytes]]) -> None:
    """A message on the petition-event topic that intake did not write."""
    producer = kafka.producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.events_topic, value, key=COUNTY.encode(), headers=headers
        )
    finally:
        await producer.stop()


def without_dispute_until(body: dict[str, Any]) -> dict[str, Any]:
    """The effect without its last day to dispute, checked on its own: 5 working days after
    intake accepted the event today, which holidays can stretch to at most 13 days (the
    National Day week); null only with its reason, when the calendar lacks next year."""
    until = body.pop("dispute_until")
    reason = body.pop("dispute_until_reason", None)
    if until is None:
        assert reason is not None and "does not cover" in reason, body
        return body
    today = system_now().astimezone(SHANGHAI).date()
    assert today + timedelta(days=5) <= date.fromisoformat(until) <= today + timedelta(days=14)
    return body


class TestCountedEvent:
    async def test_applied_names_each_unit_period_and_criterion_it_counts_against(
        self, evaluation: Evaluation, desk: Desk, world: World, db: Database
    ) -> None:
        event = eight_to_the_city(world)
        await wait_applied(db, await desk.post(event))

        body = without_dispute_until(await read(evaluation, event["event_id"], desk.key))

        assert body == {
            "event_id": event["event_id"],
            "state": "applied",
            "disputes": [],
            "counts_against": [
                {"unit_code": world.township, "period": world.period, "criteria": ["collective"]},
                {
                    "unit_code": world.village,
                    "period": world.period,
                    "criteria": ["skip_level", "collective"],
                },
            ],
            "counts_toward": [],
        }

    async def test_a_visit_that_meets_no_criterion_is_applied_against_nothing(
        self, evaluation: Evaluation, desk: Desk, world: World, db: Database
    ) -> None:
        event = events.visit(world.village, destination="county", occurred_at=world.at())
        await wait_applied(db, await desk.post(event))

        body = without_dispute_until(await read(evaluation, event["event_id"], desk.key))

        assert body == {
            "event_id": event["event_id"],
            "state": "applied",
            "disputes": [],
            "counts_against": [],
            "counts_toward": [],
        }

    async def test_voided_says_by_which_correction(
        self, evaluation: Evaluation, desk: Desk, world: World, db: Database
    ) -> None:
        target = eight_to_the_city(world)
        void = events.voided(target)
        await wait_applied(db, await desk.post(target, void))

        assert without_dispute_until(await read(evaluation, target["event_id"], desk.key)) == {
            "event_id": target["event_id"],
            "state": "voided",
            "reason": f"voided by {void['event_id']}",
            "disputes": [],
            "counts_against": [],
            "counts_toward": [],
        }
        assert (await read(evaluation, void["event_id"], desk.key))["state"] == "applied"


class TestWorkRecord:
    async def test_a_meeting_counts_toward_its_units_cadence_in_its_slot_and_against_nothing(
        self, evaluation: Evaluation, desk: Desk, world: World, db: Database
    ) -> None:
        meeting = events.meeting(world.township, occurred_at=world.at("06-10T15:00:00+08:00"))
        await wait_applied(db, await desk.post(meeting))

        assert await read(evaluation, meeting["event_id"], desk.key) == {
            "event_id": meeting["event_id"],
            "state": "applied",
            "counts_against": [],
            "counts_toward": [
                {
                    "unit_code": world.township,
                    "period": world.period,
                    "indicator": "screening_meetings",
                    "slot": f"{world.period}-06-01",  # a township meets every half-month
                }
            ],
        }

    async def test_a_rating_counts_toward_satisfaction_at_each_unit_of_its_chain(
        self, evaluation: Evaluation, desk: Desk, world: World, db: Database
    ) -> None:
        rating = events.rating(world.village, "dissatisfied", occurred_at=world.at())
        await wait_applied(db, await desk.post(rating))

        body = await read(evaluation, rating["event_id"], desk.key)

        assert body["counts_against"] == []
        assert body["counts_toward"] == [
            {"unit_code": code, "period": world.period, "indicator": "satisfaction"}
            for code in sorted((world.county, world.township, world.village))
        ]

    async def test_a_voided_meeting_counts_toward_nothing(
        self, evaluation: Evaluation, desk: Desk, world: World, db: Database
    ) -> None:
        meeting = events.meeting(world.village, occurred_at=world.at())
        void = events.voided(meeting)
        await wait_applied(db, await desk.post(meeting, void))

        body = await read(evaluation, meeting["event_id"], desk.key)

        assert (body["state"], body["counts_toward"]) == ("voided", [])


class TestCorrection:
    async def test_pending_until_its_target_arrives(
        self, evaluation: Evaluation, desk: Desk, world: World, db: Database
    ) -> None:
        target = eight_to_the_city(world)
        move = events.reattributed(target, world.villages[1])
        await wait_applied(db, await desk.post(move))

        assert await read(evaluation, move["event_id"], desk.key) == {
            "event_id": move["event_id"],
            "state": "pending",
            "counts_against": [],
            "counts_toward": [],
        }
        await wait_applied(db, await desk.post(target))

        assert (await read(evaluation, move["event_id"], desk.key))["state"] == "applied"
        counted = await read(evaluation, target["event_id"], desk.key)
        assert [c["unit_code"] for c in counted["counts_against"]] == [
            world.township,
            world.villages[1],
        ]

    async def test_refused_with_why_when_the_target_arrives_outside_the_senders_scope(
        self, evaluation: Evaluation, desk: Desk, world: World, away: tuple[str, str], db: Database
    ) -> None:
        township, village = away
        outsider = Desk(desk.intake, await create_key(db, role=Role.desk, scope=township))
        target = eight_to_the_city(world)
        void = events.voided(target) | {"unit_code": village}
        await wait_applied(db, await outsider.post(void))  # intake cannot tell yet
        assert (await read(evaluation, void["event_id"], outsider.key))["state"] == "pending"

        await wait_applied(db, await desk.post(target))

        refused = await read(evaluation, void["event_id"], outsider.key)
        assert refused["state"] == "refused"
        assert "outside the sender's scope" in refused["reason"]
        # Naming no unit: the sender may not learn where an event outside its scope lies.
        assert not re.search(r"\d{12}", refused["reason"]), refused["reason"]
        counted = await read(evaluation, target["event_id"], desk.key)
        assert counted["state"] == "applied"
        assert {c["unit_code"] for c in counted["counts_against"]} == {
            world.village,
            world.township,
        }

    async def test_after_a_void_a_reattribution_is_refused(
        self, evaluation: Evaluation, desk: Desk, world: World, db: Database
    ) -> None:
        target = eight_to_the_city(world)
        void = events.voided(target)
        await wait_applied(db, await desk.post(target, void))
        late = events.reattributed(target, world.villages[1])

        await wait_applied(db, await desk.post(late))

        refused = await read(evaluation, late["event_id"], desk.key)
        assert refused == {
            "event_id": late["event_id"],
            "state": "refused",
            "reason": "the event was voided",
            "counts_against": [],
            "counts_toward": [],
        }
        assert (await read(evaluation, target["event_id"], desk.key))["state"] == "voided"

    async def test_a_correction_of_a_correction_that_came_first_is_refused(
        self, evaluation: Evaluation, desk: Desk, world: World, db: Database
    ) -> None:
        target = eight_to_the_city(world)
        void = events.voided(target)
        of_the_void = events.voided(void)
        await wait_applied(db, await desk.post(of_the_void))  # intake cannot tell yet

        await wait_applied(db, await desk.post(target, void))

        refused = await read(evaluation, of_the_void["event_id"], desk.key)
        assert refused["state"] == "refused"
        assert "the target is a correction" in refused["reason"]
        assert (await read(evaluation, void["event_id"], desk.key))["state"] == "applied"

    async def test_from_a_key_that_does_not_exist_is_refused(
        self,
        evaluation: Evaluation,
        desk: Desk,
        world: World,
        db: Database,
        settings: Settings,
    ) -> None:
        target = eight_to_the_city(world)
        await wait_applied(db, await desk.post(target))
        void = events.voided(target)
        record = {
            "schema_version": 1,
            "event": void,
            "accepted_at": "2026-01-01T00:00:00Z",
            "key_id": "nosuchkey000",
        }

        await publish(settings, json.dumps(record).encode(), headers=[])
        await wait_applied(db, [void["event_id"]])

        refused = await read(evaluation, void["event_id"], desk.key)
        assert refused["state"] == "refused"
        assert refused["reason"] == "the key that sent it is unknown"
        assert (await read(evaluation, target["event_id"], desk.key))["state"] == "applied"


class TestAccess:
    async def test_any_role_reads_within_its_scope_and_gets_403_outside(
        self, evaluation: Evaluation, desk: Desk, world: World, away: tuple[str, str], db: Database
    ) -> None:
        target = eight_to_the_city(world)
        await wait_applied(db, await desk.post(target))
        inside = [
            await create_key(db, role=Role.reader, scope=world.township),
            await create_key(db, role=Role.desk, scope=world.village),
            await create_key(db, role=Role.reader, scope=world.county),
        ]
        outside = [
            await create_key(db, role=Role.reader, scope=away[0]),
            await create_key(db, role=Role.desk, scope=world.villages[1]),
        ]

        for key in inside:
            assert (await read(evaluation, target["event_id"], key))["state"] == "applied"
        for key in outside:
            body = assert_problem(await effect(evaluation.client, target["event_id"], key), 403)
            assert "counts_against" not in body and world.village not in json.dumps(body)

    async def test_a_correction_is_read_by_its_own_unit(
        self, evaluation: Evaluation, desk: Desk, world: World, away: tuple[str, str], db: Database
    ) -> None:
        township, village = away
        target = eight_to_the_city(world)  # never posted
        outsider = Desk(desk.intake, await create_key(db, role=Role.desk, scope=township))
        move = events.reattributed(target, village) | {"unit_code": village}
        await wait_applied(db, await outsider.post(move))

        assert (await read(evaluation, move["event_id"], outsider.key))["state"] == "pending"
        home_reader = await create_key(db, role=Role.reader, scope=world.township)
        assert_problem(await effect(evaluation.client, move["event_id"], home_reader), 403)

    async def test_unknown_is_404_saying_it_may_not_have_been_evaluated_yet(
        self, evaluation: Evaluation, keys: dict[str, str]
    ) -> None:
        body = assert_problem(
            await effect(evaluation.client, str(uuid.uuid4()), keys["admin"]), 404
        )
        assert "may not have been evaluated yet" in body["detail"]

    async def test_without_a_key_is_401(self, evaluation: Evaluation) -> None:
        response = await evaluation.client.get(f"/v1/events/{uuid.uuid4()}/effect")
        assert_problem(response, 401)

    async def test_a_malformed_id_is_422(
        self, evaluation: Evaluation, keys: dict[str, str]
    ) -> None:
        assert_problem(await effect(evaluation.client, "not-a-uuid", keys["admin"]), 422)


class TestDeadLettered:
    async def test_an_event_the_consumer_dead_lettered_says_so_with_the_reason(
        self, evaluation: Evaluation, keys: dict[str, str], settings: Settings
    ) -> None:
        unknown_unit = events.visit("340722999999")
        # Intake's header names the event; a record that does not parse names it in its body.
        broken = {"event_id": str(uuid.uuid4()), "type": "petition_visit", "unit_code": COUNTY}
        await publish(
            settings,
            json.dumps(
                {
                    "schema_version": 1,
                    "event": unknown_unit,
                    "accepted_at": "2026-01-01T00:00:00Z",
                    "key_id": "k",
                }
            ).encode(),
            headers=[("event_id", unknown_unit["event_id"].encode())],
        )
        await publish(settings, json.dumps({"event": broken}).encode(), headers=[])

        first = await dead_lettered(evaluation, unknown_unit["event_id"], keys["admin"])
        second = await dead_lettered(evaluation, broken["event_id"], keys["county_reader"])

        assert first["reason"] == "unknown unit 340722999999"
        assert first["counts_against"] == []
        assert second["state"] == "dead_lettered"
        # A unit that is not in the registry lies in no key's scope but an admin's.
        assert_problem(
            await effect(evaluation.client, unknown_unit["event_id"], keys["county_reader"]), 403
        )


async def dead_lettered(
    evaluation: Evaluation, event_id: str, key: str, *, timeout: float = 20.0
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        response = await effect(evaluation.client, event_id, key)
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            assert body["state"] == "dead_lettered", body
            return body
        assert response.status_code == 404, response.text
        if loop.time() > deadline:
            raise TimeoutError(f"{event_id} was not dead-lettered")
        await asyncio.sleep(0.1)
