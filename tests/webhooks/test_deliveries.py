"""Deliveries to a receiver on 127.0.0.1: every one signed `v1` and `v1a`, each change received
once after retries and in order per unit, a 410 disabling the subscription, both key pairs
signing during a rotation's overlap, a slow receiver holding up nobody else, dead letters
replayed."""

import asyncio
import uuid
from typing import Any

from services.webhooks.rules import AllowList
from shared.campaign import system_now
from shared.early_warning import EarlyWarning, WarningKind
from tests.support.app import bearer
from tests.support.waiting import wait_until
from tests.support.webhooks import (
    Publisher,
    Received,
    Receiver,
    failing_first,
    status_message,
    verifies_v1a,
    verify_v1,
)
from tests.webhooks.conftest import RunningWebhooks

COUNTY = "340722000000"
VILLAGES = [f"3407221002{n:02d}" for n in range(1, 9)]


def a_period() -> str:
    """A period no other test publishes statuses of: its changes are this test's alone."""
    return f"wh-{uuid.uuid4().hex[:12]}"


async def subscribe(
    webhooks: RunningWebhooks, key: str, url: str, kinds: list[str] | None = None
) -> dict[str, Any]:
    response = await webhooks.client.post(
        "/v1/subscriptions",
        json={"url": url, "kinds": kinds or ["status_changes"]},
        headers=bearer(key),
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def of_period(received: list[Received], period: str) -> list[Received]:
    return [r for r in received if r.payload["data"].get("period") == period]


async def test_each_change_arrives_once_after_retries_in_order_per_unit_and_signed(
    webhooks: RunningWebhooks, receiver: Receiver, publisher: Publisher, keys: dict[str, str]
) -> None:
    url = receiver.endpoint("/retries", failing_first(3))
    made = await subscribe(webhooks, keys["county_reader"], url)
    period = a_period()
    units = VILLAGES[:2]
    await publisher.statuses(
        *(status_message(unit, period, version) for version in (1, 2, 3) for unit in units)
    )

    await wait_until(
        lambda: len(of_period(receiver.delivered("/retries"), period)) == 6,
        message="six changes delivered",
    )
    attempts = of_period(receiver.received["/retries"], period)
    for received in attempts:
        assert verify_v1(made["secret"], received)["data"]["period"] == period
        assert verifies_v1a(made["public_key"], received)
    delivered = of_period(receiver.delivered("/retries"), period)
    ids = [r.webhook_id for r in delivered]
    assert len(set(ids)) == 6  # each change once
    assert all(sum(r.webhook_id == i for r in attempts) == 4 for i in ids)  # 500 x3, then 200
    for unit in units:
        sent = [
            r.payload["data"]["version"] for r in attempts if r.payload["data"]["unit_code"] == unit
        ]
        # The next change of a unit is only tried once the one before is delivered.
        assert sent == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
    first = delivered[0].payload
    assert first["type"] == "unit.status_changed"
    assert set(first["data"]) == {"unit_code", "period", "version", "three_no", "changed_at"}
    found = await webhooks.client.get(
        f"/v1/subscriptions/{made['subscription_id']}", headers=bearer(keys["county_reader"])
    )
    assert found.json()["deliveries"]["delivered"] >= 6  # and any other county's change
    assert "secret" not in found.json()


async def test_a_receiver_answering_410_disables_its_subscription(
    webhooks: RunningWebhooks, receiver: Receiver, publisher: Publisher, keys: dict[str, str]
) -> None:
    gone = await subscribe(
        webhooks, keys["county_reader"], receiver.endpoint("/gone", lambda _: 410)
    )
    witness_url = receiver.endpoint("/gone-witness")
    await subscribe(webhooks, keys["county_reader"], witness_url)
    period = a_period()
    await publisher.statuses(status_message(VILLAGES[2], period, 1))

    async def disabled() -> bool:
        found = await webhooks.client.get(
            f"/v1/subscriptions/{gone['subscription_id']}", headers=bearer(keys["county_reader"])
        )
        return bool(found.json()["state"] == "disabled")

    await wait_until(disabled, message="the subscription disabled")
    # The next changes of the same key follow on the same partition: once the witness has the
    # last, the disabled subscription was passed over for both.
    await publisher.statuses(*(status_message(VILLAGES[2], period, v) for v in (2, 3)))
    await wait_until(
        lambda: len(of_period(receiver.delivered("/gone-witness"), period)) == 3,
        message="the witness's three changes",
    )
    assert [
        r.payload["data"]["version"] for r in of_period(receiver.received["/gone"], period)
    ] == [1]
    dead = await webhooks.client.get(
        f"/v1/subscriptions/{gone['subscription_id']}/dead-letters",
        headers=bearer(keys["county_reader"]),
    )
    (letter,) = dead.json()["items"]
    assert letter["last_status"] == 410
    assert letter["payload"]["data"]["version"] == 1


async def test_a_rotation_signs_with_the_old_and_the_new_keys_during_the_overlap(
    webhooks: RunningWebhooks, receiver: Receiver, publisher: Publisher, keys: dict[str, str]
) -> None:
    old = await subscribe(webhooks, keys["county_reader"], receiver.endpoint("/rotated"))
    rotated = await webhooks.client.post(
        f"/v1/subscriptions/{old['subscription_id']}/rotate",
        headers=bearer(keys["county_reader"]),
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["secret"] != old["secret"] and new["public_key"] != old["public_key"]
    assert new["previous_public_key"] == old["public_key"]
    period = a_period()
    await publisher.statuses(status_message(VILLAGES[3], period, 1))

    await wait_until(
        lambda: len(of_period(receiver.delivered("/rotated"), period)) == 1,
        message="the delivery after the rotation",
    )
    (received,) = of_period(receiver.delivered("/rotated"), period)
    assert len(received.headers["webhook-signature"].split(" ")) == 4
    for made in (old, new):
        assert verify_v1(made["secret"], received)["data"]["period"] == period
        assert verifies_v1a(made["public_key"], received)


async def test_a_slow_receiver_holds_up_no_other(
    webhooks: RunningWebhooks, receiver: Receiver, publisher: Publisher, keys: dict[str, str]
) -> None:
    release = asyncio.Event()

    async def stuck(_: Received) -> int:
        await release.wait()
        return 200

    await subscribe(webhooks, keys["county_reader"], receiver.endpoint("/slow", stuck))
    await subscribe(webhooks, keys["county_reader"], receiver.endpoint("/prompt"))
    period = a_period()
    try:
        await publisher.statuses(*(status_message(unit, period, 1) for unit in VILLAGES))
        await wait_until(
            lambda: len(of_period(receiver.delivered("/prompt"), period)) == len(VILLAGES),
            message="every change at the prompt receiver",
        )
        # The slow one holds its own slots only (4 by default), one unit's head in each.
        assert 1 <= len(of_period(receiver.received["/slow"], period)) <= 4
    finally:
        release.set()


async def test_dead_letters_are_listed_and_replayed(
    webhooks: RunningWebhooks, receiver: Receiver, publisher: Publisher, keys: dict[str, str]
) -> None:
    state = {"status": 503}
    made = await subscribe(
        webhooks, keys["county_reader"], receiver.endpoint("/dead", lambda _: state["status"])
    )
    path = f"/v1/subscriptions/{made['subscription_id']}/dead-letters"
    period = a_period()
    await publisher.statuses(status_message(VILLAGES[4], period, 1))

    async def dead_letters() -> list[dict[str, Any]]:
        found = await webhooks.client.get(path, headers=bearer(keys["county_reader"]))
        items: list[dict[str, Any]] = found.json()["items"]
        return items

    (letter,) = await _eventually(dead_letters)
    assert letter["attempts"] == 8  # the schedule's eight attempts
    assert letter["last_status"] == 503
    state["status"] = 200
    replayed = await webhooks.client.post(f"{path}/replay", headers=bearer(keys["county_reader"]))
    assert replayed.json() == {"replayed": 1}
    await wait_until(
        lambda: len(of_period(receiver.delivered("/dead"), period)) == 1, message="the replay"
    )
    assert await dead_letters() == []


async def test_warnings_are_delivered_with_the_feeds_ids(
    webhooks: RunningWebhooks, receiver: Receiver, publisher: Publisher, keys: dict[str, str]
) -> None:
    made = await subscribe(
        webhooks, keys["township_reader"], receiver.endpoint("/warnings"), kinds=["warnings"]
    )
    warning = EarlyWarning(
        warning_id=uuid.uuid4(),
        kind=WarningKind.repeat_petitioner,
        unit_code=VILLAGES[5],
        raised_at=system_now(),
        event_ids=[],
        version=1,
    )
    await publisher.send(
        publisher.settings.warning_topic, warning.key, warning.model_dump_json().encode()
    )
    mine = str(warning.warning_id)
    await wait_until(
        lambda: any(
            r.payload["data"]["warning_id"] == mine for r in receiver.delivered("/warnings")
        ),
        message="the warning delivered",
    )
    (received,) = [
        r for r in receiver.delivered("/warnings") if r.payload["data"]["warning_id"] == mine
    ]
    assert verify_v1(made["secret"], received)["type"] == "warning.raised"
    assert received.webhook_id == f"warning_{mine}_1"
    assert received.payload["data"]["version"] == 1


async def _eventually(read: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    async def some() -> bool:
        nonlocal found
        found = await read()
        return bool(found)

    await wait_until(some, message="a dead letter")
    return found


async def test_a_target_no_longer_allowed_is_refused_at_delivery(
    webhooks: RunningWebhooks, receiver: Receiver, publisher: Publisher, keys: dict[str, str]
) -> None:
    """The target is checked again before every attempt, not only at subscription (as after
    the allow-list changed, or the host came to resolve elsewhere): nothing reaches it."""
    made = await subscribe(webhooks, keys["county_reader"], receiver.endpoint("/disallowed"))
    dispatcher = webhooks.app.state.dispatcher
    allowed, dispatcher.allowed = dispatcher.allowed, AllowList()
    path = f"/v1/subscriptions/{made['subscription_id']}/dead-letters"
    try:
        period = a_period()
        await publisher.statuses(status_message(VILLAGES[6], period, 1))

        async def dead_letters() -> list[dict[str, Any]]:
            found = await webhooks.client.get(path, headers=bearer(keys["county_reader"]))
            items: list[dict[str, Any]] = found.json()["items"]
            return items

        (letter,) = await _eventually(dead_letters)
    finally:
        dispatcher.allowed = allowed
    assert letter["last_status"] is None
    assert "not a public address" in letter["last_error"]
    assert of_period(receiver.received["/disallowed"], period) == []
