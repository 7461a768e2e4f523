"""A status lists, among its counting events, those with a live dispute (filed, or its review
requested: docs/domain.md section 10), as the steps on the disputes topic leave each dispute:
a dispute's newest step counts, however often and in whatever order its steps arrive, and the
list changes at once, on every instance, also where the status was already served."""

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from aiokafka.structs import RecordMetadata

from services.reporting.rebuild import rebuild
from shared.db import Database
from shared.dispute_steps import (
    Action,
    Decision,
    Dispute,
    DisputeStep,
    Grounds,
    Ruling,
    State,
    Step,
)
from shared.status import UnitStatus
from tests.conftest import COUNTY
from tests.reporting.conftest import PLAN_PERIOD
from tests.support.dead_letters import dead_letter_reasons
from tests.support.reporting import (
    Reporting,
    StatusPublisher,
    demo_units,
    demo_villages,
    status,
    wait_committed,
)
from tests.support.waiting import wait_until

# No other test publishes statuses for this period, and evaluation knows only the campaign
# file's periods.
PERIOD = PLAN_PERIOD
# Villages of this module's own (no other test in the period touches them).
VILLAGES = demo_villages()[-8:]


def parent_of(code: str) -> str:
    return next(unit["parent_code"] for unit in demo_units() if unit["code"] == code)


def dispute_step(
    event_id: str,
    dispute_id: uuid.UUID,
    version: int,
    state: State,
    *,
    unit_code: str,
) -> DisputeStep:
    """The step that brought a dispute of the event to `state` at `version`, as the cases
    service publishes it; a decided dispute was rejected by the county."""
    now = datetime.now(UTC)
    ruled = state in (State.decided, State.review_requested, State.reviewed)
    decision = Ruling(decision=Decision.reject, reason="counted rightly", by=COUNTY, at=now)
    dispute = Dispute(
        dispute_id=dispute_id,
        event_id=uuid.UUID(event_id),
        unit_code=unit_code,
        grounds=Grounds.facts,
        proposed_unit=None,
        duplicate_of=None,
        statement="the visit was not ours",
        filer_scope=unit_code,
        decider_code=COUNTY,
        state=state,
        decision=decision if ruled else None,
        review_request_until=None,
        review=decision if state is State.reviewed else None,
        version=version,
        filed_at=now,
        changed_at=now,
    )
    step = Step(
        version=version,
        action=Action(state.value),
        at=now,
        key_id="k-test",
        role="bureau",
        scope_code=unit_code,
        reason="test step",
        detail={},
    )
    return DisputeStep(step_id=version, dispute=dispute, step=step)


class Disputes:
    """One dispute of a counting event, stepped through its states."""

    def __init__(self, event_id: str, unit_code: str) -> None:
        self.event_id = event_id
        self.unit_code = unit_code
        self.dispute_id = uuid.uuid4()

    def step(self, version: int, state: State) -> DisputeStep:
        return dispute_step(
            self.event_id, self.dispute_id, version, state, unit_code=self.unit_code
        )


async def publish_steps(
    reporting: Reporting, publisher: StatusPublisher, *steps: DisputeStep
) -> list[RecordMetadata]:
    return await publish_raw_steps(
        reporting, publisher, [(s.key, s.model_dump_json().encode()) for s in steps]
    )


async def publish_raw_steps(
    reporting: Reporting,
    publisher: StatusPublisher,
    messages: list[tuple[bytes | None, bytes | None]],
) -> list[RecordMetadata]:
    """Sent in order, and waited for until reporting's dispute consumer committed them."""
    settings = reporting.settings
    sent = await publisher.publish_raw(messages, topic=settings.disputes_topic)
    await wait_committed(settings, sent, group=settings.dispute_consumer_group)
    return sent


async def publish_status(publisher: StatusPublisher, reporting: Reporting, s: UnitStatus) -> None:
    await wait_committed(reporting.settings, await publisher.publish(s))


async def read_status(reporting: Reporting, key: str, code: str) -> dict[str, Any]:
    response = await reporting.get(f"/v1/units/{code}/status", key, period=PERIOD)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body | {"etag": response.headers["etag"]}


async def disputed(reporting: Reporting, key: str, code: str) -> list[str]:
    listed: list[str] = (await read_status(reporting, key, code))["disputed_event_ids"]
    return listed


async def test_a_unit_without_a_status_lists_no_disputed_event(
    reporting: Reporting, keys: dict[str, str]
) -> None:
    body = await read_status(reporting, keys["admin"], VILLAGES[0])
    assert body["version"] == 0 and body["counting_event_ids"] == []
    assert body["disputed_event_ids"] == []


async def test_an_event_is_listed_while_filed_not_once_decided_and_again_under_review(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    admin, village = keys["admin"], VILLAGES[1]
    counted = status(village, PERIOD, 1, counts={"collective": 3}, people={"collective": 9})
    first, second, third = counted.counting_event_ids
    # The township counts the same events, in an order of its own.
    township = status(parent_of(village), PERIOD, 1).model_copy(
        update={"counting_event_ids": [third, second, first]}
    )
    for unit_status in (counted, township):
        await publish_status(publisher, reporting, unit_status)
    before = await read_status(reporting, admin, village)  # served, and kept by the instance
    assert before["disputed_event_ids"] == []

    on_first, on_third = Disputes(first, village), Disputes(third, village)
    await publish_steps(
        reporting, publisher, on_first.step(1, State.filed), on_third.step(1, State.filed)
    )
    filed = await read_status(reporting, admin, village)
    assert filed["disputed_event_ids"] == [first, third]
    assert filed["etag"] != before["etag"]
    assert await disputed(reporting, admin, parent_of(village)) == [third, first]

    await publish_steps(reporting, publisher, on_first.step(2, State.decided))
    assert await disputed(reporting, admin, village) == [third]

    await publish_steps(reporting, publisher, on_first.step(3, State.review_requested))
    assert await disputed(reporting, admin, village) == [first, third]

    await publish_steps(
        reporting, publisher, on_first.step(4, State.reviewed), on_third.step(2, State.withdrawn)
    )
    assert await disputed(reporting, admin, village) == []


async def test_a_step_delivered_again_or_after_a_newer_one_changes_nothing(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    admin, village = keys["admin"], VILLAGES[2]
    counted = status(village, PERIOD, 1)
    await publish_status(publisher, reporting, counted)
    (event_id,) = counted.counting_event_ids
    dispute = Disputes(event_id, village)
    filed, decided = dispute.step(1, State.filed), dispute.step(2, State.decided)

    await publish_steps(reporting, publisher, filed, filed)
    assert await disputed(reporting, admin, village) == [event_id]
    await publish_steps(reporting, publisher, decided, filed)  # one batch or two
    assert await disputed(reporting, admin, village) == []
    await publish_steps(reporting, publisher, filed)  # delivered again later
    assert await disputed(reporting, admin, village) == []

    review = dispute.step(3, State.review_requested)
    await publish_steps(reporting, publisher, review, decided, review, filed)
    assert await disputed(reporting, admin, village) == [event_id]


async def test_an_event_the_status_does_not_count_is_never_listed(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    admin, village, neighbour = keys["admin"], VILLAGES[3], VILLAGES[4]
    ours, theirs = status(village, PERIOD, 1), status(neighbour, PERIOD, 1)
    for unit_status in (ours, theirs):
        await publish_status(publisher, reporting, unit_status)
    (their_event,) = theirs.counting_event_ids

    await publish_steps(
        reporting,
        publisher,
        Disputes(their_event, village).step(1, State.filed),  # naming our unit, even
        Disputes(str(uuid.uuid4()), village).step(1, State.filed),  # counted by no status
    )

    assert await disputed(reporting, admin, village) == []
    assert await disputed(reporting, admin, neighbour) == [their_event]


async def test_a_malformed_step_is_dead_lettered_and_not_applied(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    admin, village = keys["admin"], VILLAGES[5]
    counted = status(village, PERIOD, 1)
    await publish_status(publisher, reporting, counted)
    (event_id,) = counted.counting_event_ids
    filed = Disputes(event_id, village).step(1, State.filed)
    value = filed.model_dump_json()

    sent = await publish_raw_steps(
        reporting,
        publisher,
        [
            (b"not-the-event-id", value.encode()),
            (filed.key, b'{"dispute": "filed"}'),
            (filed.key, value.replace(f'"unit_code":"{village}"', '"unit_code":"abc"').encode()),
            (filed.key, None),
        ],
    )

    assert await disputed(reporting, admin, village) == []
    reasons = await dead_letter_reasons(reporting.settings, sent, by="reporting-disputes")
    assert None not in reasons, reasons


async def test_another_instance_lists_a_new_dispute_of_a_status_it_already_served(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    admin, village = keys["admin"], VILLAGES[6]
    counted = status(village, PERIOD, 1)
    await publish_status(publisher, reporting, counted)
    (event_id,) = counted.counting_event_ids
    reader = Reporting(reporting.settings.model_copy(update={"reporting_run_consumer": False}))
    await reader.start()
    try:
        await wait_until(
            lambda: reader.service.statuses.listening,
            message="the second instance to listen for statuses",
        )
        assert await disputed(reader, admin, village) == []  # served, and kept

        await publish_steps(reporting, publisher, Disputes(event_id, village).step(1, State.filed))

        async def listed() -> bool:
            return await disputed(reader, admin, village) == [event_id]

        await wait_until(listed, timeout=5, message="the other instance to list the dispute")
    finally:
        await reader.stop()


async def test_a_rebuild_of_the_read_model_keeps_the_disputes(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str], db: Database
) -> None:
    admin, village = keys["admin"], VILLAGES[7]
    counted = status(village, PERIOD, 1)
    await publish_status(publisher, reporting, counted)
    (event_id,) = counted.counting_event_ids
    await publish_steps(reporting, publisher, Disputes(event_id, village).step(1, State.filed))

    await rebuild(db=db, settings=reporting.settings, registry=reporting.service.registry)

    async with db.engine.connect() as connection:
        kept = await connection.execute(
            sa.text("SELECT count(*) FROM reporting.disputes WHERE event_id = :event AND live"),
            {"event": event_id},
        )
        assert kept.scalar() == 1
    assert await disputed(reporting, admin, village) == [event_id]
