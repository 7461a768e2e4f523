"""The outbox relay: order per county, exactly-once delivery across a Kafka outage, and the
same event id when a crash makes it publish again."""

import asyncio
from collections import defaultdict

import httpx
import pytest
from aiokafka.partitioner import DefaultPartitioner

from services.intake.config import IntakeSettings
from services.intake.main import create_app, relay
from services.intake.models import outbox
from shared import kafka
from shared.config import Settings
from shared.db import Database
from shared.outbox import OutboxRepository
from tests.conftest import SMALL_PROVINCE, VILLAGE, bearer, serve
from tests.support import events
from tests.support.intake import (
    RelayControl,
    outbox_count,
    published,
    published_ids,
    wait_outbox_drained,
)
from tests.support.stack import ROOT
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("relay_control")


def synthetic_villages() -> list[str]:
    """One village in each county of the small synthetic province."""
    counties_per_city = -(-SMALL_PROVINCE.counties // SMALL_PROVINCE.cities)
    codes = []
    for index in range(SMALL_PROVINCE.counties):
        city, county = divmod(index, counties_per_city)
        codes.append(f"{SMALL_PROVINCE.province}{city + 1:02d}{county + 1:02d}100201")
    return codes


async def test_batch_of_1000_arrives_whole_and_in_order_per_county(
    intake: httpx.AsyncClient,
    keys: dict[str, str],
    db: Database,
    settings: Settings,
    intake_settings: IntakeSettings,
) -> None:
    villages = [VILLAGE, *synthetic_villages()]
    batch = [events.visit(villages[i % len(villages)], headcount=1 + i % 7) for i in range(1000)]

    response = await intake.post(
        "/v1/events/batch", json={"events": batch}, headers=bearer(keys["admin"])
    )

    assert [r["status"] for r in response.json()["results"]] == ["accepted"] * 1000
    await wait_outbox_drained(db)
    sent = {e["event_id"] for e in batch}
    on_topic = [m for m in await published(settings) if m["value"]["event"]["event_id"] in sent]
    assert sorted(published_ids(on_topic)) == sorted(sent)
    order_on_topic: dict[bytes, list[str]] = defaultdict(list)
    for message in on_topic:
        order_on_topic[message["key"]].append(message["value"]["event"]["event_id"])
    order_sent: dict[bytes, list[str]] = defaultdict(list)
    for event in batch:
        county = event["unit_code"][:6] + "000000"
        order_sent[county.encode()].append(event["event_id"])
    assert order_on_topic == order_sent
    assert len(order_sent) == 5
    # Where the producer's default partitioner would put each key, as any other producer does.
    partitions = list(range(intake_settings.event_partitions))
    assert {m["key"]: m["partition"] for m in on_topic} == {
        key: DefaultPartitioner()(key, partitions, partitions) for key in order_sent
    }


async def test_a_crash_between_publish_and_mark_publishes_again_with_the_same_event_id(
    intake: httpx.AsyncClient,
    keys: dict[str, str],
    db: Database,
    settings: Settings,
    relay_control: RelayControl,
    intake_settings: IntakeSettings,
) -> None:
    await relay_control.stop()
    try:
        event = events.visit(VILLAGE)
        await intake.post("/v1/events", json=event, headers=bearer(keys["admin"]))
        producer = kafka.producer(settings)
        await producer.start()
        try:
            # A relay round that publishes and then dies before its transaction commits.
            with pytest.raises(RuntimeError):
                async with db.session() as session:
                    pending = await OutboxRepository(session, outbox).take(1000)
                    assert event["event_id"] in [m.headers["event_id"] for m in pending]
                    await relay(db, intake_settings).publish(producer, pending)
                    raise RuntimeError("killed before marking sent")
        finally:
            await producer.stop()
        assert await outbox_count(db) >= 1
    finally:
        relay_control.start()
    await wait_outbox_drained(db)

    copies = [
        m for m in await published(settings) if m["value"]["event"]["event_id"] == event["event_id"]
    ]
    assert len(copies) == 2
    assert {m["headers"]["event_id"] for m in copies} == {event["event_id"].encode()}
    assert copies[0]["value"] == copies[1]["value"]


class Rollback(Exception):
    pass


async def test_while_one_relay_holds_the_outbox_another_claims_nothing(
    intake: httpx.AsyncClient, keys: dict[str, str], db: Database, relay_control: RelayControl
) -> None:
    """Two instances' relays taking rows in turn would interleave one county's events."""
    await relay_control.stop()
    try:
        for event in (events.visit(VILLAGE), events.visit(VILLAGE)):
            await intake.post("/v1/events", json=event, headers=bearer(keys["admin"]))
        with pytest.raises(Rollback):  # what the first took goes back: it published nothing
            async with db.session() as first, db.session() as second:
                taken = await OutboxRepository(first, outbox).take(1)
                assert len(taken) == 1
                assert await OutboxRepository(second, outbox).take(1000) == []
                raise Rollback
    finally:
        relay_control.start()
    await wait_outbox_drained(db)


@pytest.mark.faults
async def test_kafka_stopped_events_accepted_then_published_exactly_once_when_it_returns(
    intake: httpx.AsyncClient, keys: dict[str, str], db: Database, settings: Settings
) -> None:
    stack = str(ROOT / "deploy" / "stack.sh")
    await (await asyncio.create_subprocess_exec(stack, "kafka-stop")).wait()
    try:
        batch = [events.visit(VILLAGE) for _ in range(50)]
        loop = asyncio.get_running_loop()
        started = loop.time()
        for event in batch:
            response = await intake.post("/v1/events", json=event, headers=bearer(keys["admin"]))
            assert response.status_code == 202
        assert loop.time() - started < 10, "desks must not wait for the broker"
        assert (await intake.get("/readyz")).json()["checks"]["kafka"] is False
        # A negative check (the relay, trying all along, deleted nothing) has no condition to
        # poll for: the producer retries inside one round rather than failing rounds.
        await asyncio.sleep(2)
        assert await outbox_count(db) >= len(batch)
    finally:
        await (await asyncio.create_subprocess_exec(stack, "kafka-start")).wait()
    await wait_outbox_drained(db, timeout=90)

    ids = published_ids(await published(settings))
    assert all(ids.count(e["event_id"]) == 1 for e in batch)


async def test_the_relay_in_the_intake_process_publishes_an_event_as_soon_as_it_is_accepted(
    keys: dict[str, str], settings: Settings, relay_control: RelayControl
) -> None:
    """Intake's outbox sends no NOTIFY (it would make every accepted event's commit wait its
    turn): the relay running in the intake process is woken by the acceptance itself, long
    before its next poll."""
    await relay_control.stop()  # the suite's own relay must not publish it first
    try:
        app = create_app(IntakeSettings(intake_run_relay=True, relay_idle_poll_seconds=60))
        async with serve(app, "http://intake") as intake:
            # Once the first event is out, the relay has had its rounds and waits for work.
            for event in (events.visit(VILLAGE), events.visit(VILLAGE)):
                response = await intake.post(
                    "/v1/events", json=event, headers=bearer(keys["admin"])
                )
                assert response.status_code == 202
                await wait_published(settings, event["event_id"], seconds=10.0)
    finally:
        relay_control.start()


async def wait_published(settings: Settings, event_id: str, *, seconds: float) -> None:
    async def out() -> bool:
        return event_id in published_ids(await published(settings))

    await wait_until(out, timeout=seconds, message=f"event {event_id} to be published")
