"""Messages the evaluation cannot apply go to the dead-letter topic with the reason, and the
consumer goes on with the next event."""

import json
import uuid

from shared import kafka
from shared.config import Settings
from shared.db import Database
from tests.conftest import COUNTY
from tests.evaluation.conftest import Evaluation
from tests.evaluation.helpers import Desk, Worlds, status, wait_applied
from tests.support import events
from tests.support.metrics import sample
from tests.support.stack import read_topic

DEAD_LETTERED = "sanwu_evaluation_dead_lettered_total"


def record(event: dict[str, object]) -> bytes:
    return json.dumps(
        {"schema_version": 1, "event": event, "accepted_at": "2026-01-01T00:00:00Z", "key_id": "k"}
    ).encode()


async def test_poison_goes_to_the_dead_letter_topic_and_the_next_event_is_applied(
    evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database, settings: Settings
) -> None:
    world = worlds.township()
    marker = uuid.uuid4().hex.encode()
    poison = {
        b"{not json": "not an event record",
        record({"type": "petition_visit", "event_id": str(uuid.uuid4())}): "not an event record",
        record(events.visit("340722999999", occurred_at=world.at())): "unknown unit 340722999999",
    }
    before = {
        reason: await sample(evaluation.client, DEAD_LETTERED, reason=reason)
        for reason in ("invalid", "unknown_unit")
    }
    producer = kafka.producer(settings)
    await producer.start()
    try:
        for value in poison:
            # Keyed like the good event below: the same partition, ahead of it.
            await producer.send_and_wait(
                settings.events_topic, value, key=COUNTY.encode(), headers=[("marker", marker)]
            )
    finally:
        await producer.stop()
    good = events.visit(world.village, destination="county", headcount=5, occurred_at=world.at())

    await desk.post(good)
    await wait_applied(db, [good["event_id"]])

    stored = await status(db, world.village, world.period)
    assert stored is not None and stored["counting_event_ids"] == [good["event_id"]]
    dead = {
        value: headers
        for _, _, value, headers in await read_topic(settings, settings.dead_letter_topic)
        if headers.get("marker") == marker
    }
    assert set(dead) == set(poison)
    for value, reason in poison.items():
        headers = dead[value]
        assert headers["dead_letter_reason"].decode().startswith(reason), headers
        assert headers["source_topic"].decode() == settings.events_topic
        assert int(headers["source_offset"]) >= 0
    counted = {
        reason: await sample(evaluation.client, DEAD_LETTERED, reason=reason) - before[reason]
        for reason in before
    }
    assert counted == {"invalid": 2, "unknown_unit": 1}
