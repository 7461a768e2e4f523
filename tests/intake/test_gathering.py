"""Single events posted at the same moment share a statement: each is still answered for
itself, repeats and conflicts among them are told apart as for events posted one after the
other, and one event's failure answers that event alone. The receipt each gets."""

import asyncio
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa

from services.intake.gathering import Gathering, Outcome, Receipt
from services.intake.payloads import Pending, prepare
from services.intake.routes import receipt_json
from services.intake.schemas import ReceiptOut
from shared.campaign import system_now
from shared.config import Settings
from shared.db import Database
from shared.errors import DependencyUnavailable
from shared.events import event_adapter
from shared.keyed_hash import KeyedHash
from tests.conftest import COUNTY, VILLAGE, bearer
from tests.support import events
from tests.support.intake import published, published_ids, wait_outbox_drained
from tests.support.metrics import sample

pytestmark = pytest.mark.usefixtures("relay_control")


async def post_at_once(
    intake: httpx.AsyncClient, bodies: list[dict[str, Any]], key: str
) -> list[httpx.Response]:
    return await asyncio.gather(
        *(intake.post("/v1/events", json=body, headers=bearer(key)) for body in bodies)
    )


async def journal_order(db: Database, event_ids: list[str]) -> list[str]:
    """The events in the order of their outbox messages (the order they are published in)."""
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                "SELECT j.event_id FROM intake.journal j WHERE j.event_id = ANY(:ids) "
                "ORDER BY j.accepted_at"
            ),
            {"ids": [UUID(i) for i in event_ids]},
        )
        return [str(r.event_id) for r in rows]


class TestPostedAtOnce:
    async def test_share_statements_and_each_is_accepted_and_published_once_in_acceptance_order(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database, settings: Settings
    ) -> None:
        bodies = [events.visit(VILLAGE, headcount=1 + i % 3) for i in range(40)]
        statements = await sample(intake, "sanwu_intake_gathered_events_count")
        gathered = await sample(intake, "sanwu_intake_gathered_events_sum")

        responses = await post_at_once(intake, bodies, keys["county_desk"])

        assert [r.status_code for r in responses] == [202] * 40
        assert [r.json()["event_id"] for r in responses] == [b["event_id"] for b in bodies]
        assert await sample(intake, "sanwu_intake_gathered_events_sum") - gathered == 40
        assert await sample(intake, "sanwu_intake_gathered_events_count") - statements < 40
        await wait_outbox_drained(db)
        ids = [b["event_id"] for b in bodies]
        on_topic = [i for i in published_ids(await published(settings)) if i in set(ids)]
        assert sorted(on_topic) == sorted(ids)  # each once
        # The topic carries them in the order they were accepted, as each receipt says.
        accepted_at = {r.json()["event_id"]: r.json()["accepted_at"] for r in responses}
        assert on_topic == sorted(on_topic, key=accepted_at.__getitem__)
        assert on_topic == await journal_order(db, ids)

    async def test_the_same_event_at_once_is_accepted_once_and_the_others_are_repeats(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database, settings: Settings
    ) -> None:
        event = events.visit(VILLAGE, headcount=2)

        responses = await post_at_once(intake, [event] * 8, keys["county_desk"])

        assert sorted(r.status_code for r in responses) == [200] * 7 + [202]
        assert len({r.json()["accepted_at"] for r in responses}) == 1
        await wait_outbox_drained(db)
        assert published_ids(await published(settings)).count(event["event_id"]) == 1

    async def test_the_same_id_with_other_content_at_once_keeps_one_and_answers_409(
        self, intake: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        event = events.visit(VILLAGE, headcount=2)
        bodies = [event | {"headcount": n} for n in range(2, 7)]

        responses = await post_at_once(intake, bodies, keys["county_desk"])

        assert sorted(r.status_code for r in responses) == [202] + [409] * 4
        kept = bodies[[r.status_code for r in responses].index(202)]
        stored = await intake.get(f"/v1/events/{event['event_id']}", headers=bearer(keys["admin"]))
        assert stored.json()["headcount"] == kept["headcount"]


def pending(**fields: Any) -> Pending:
    event = event_adapter.validate_python(events.visit(VILLAGE, **fields))
    prepared = prepare(event, county_code=COUNTY, keyed_hash=KeyedHash("secret"))
    return Pending(prepared, key_id="key", correlation_id="", accepted_at=system_now())


class ScriptedStore:
    """Journals by answering a receipt per event, after the caller lets it; records each
    statement's events. An event in `bad` fails any statement it is in."""

    def __init__(self, *, bad: set[UUID] | None = None, error: Exception | None = None) -> None:
        self.statements: list[list[UUID]] = []
        self.bad = bad or set()
        self.error = error
        self.release = asyncio.Event()

    async def __call__(self, group: list[Pending]) -> dict[UUID, Outcome]:
        self.statements.append([p.event_id for p in group])
        await self.release.wait()
        if self.error is not None:
            raise self.error
        if self.bad & {p.event_id for p in group}:
            raise ValueError("a row the database refused")
        return {p.event_id: Receipt(p.event_id, p.accepted_at, duplicate=False) for p in group}


async def started(*coroutines: Any) -> list[asyncio.Task[Outcome]]:
    """Each waiting for its outcome, and the statement they started running."""
    tasks = [asyncio.create_task(c) for c in coroutines]
    for _ in range(2):
        await asyncio.sleep(0)
    return tasks


class TestGathering:
    async def test_events_waiting_while_statements_run_go_together_in_the_next(self) -> None:
        store = ScriptedStore()
        gathering = Gathering(store, statements=1, max_events=1000)
        items = [pending() for _ in range(5)]

        tasks = await started(gathering.store(items[0]))
        tasks += await started(*(gathering.store(p) for p in items[1:]))
        store.release.set()
        outcomes = await asyncio.gather(*tasks)

        assert store.statements == [[items[0].event_id], [p.event_id for p in items[1:]]]
        assert [o.event_id for o in outcomes if isinstance(o, Receipt)] == [
            p.event_id for p in items
        ]

    async def test_a_statement_holds_at_most_max_events_and_no_id_twice(self) -> None:
        store = ScriptedStore()
        gathering = Gathering(store, statements=1, max_events=2)
        first, second, third = pending(), pending(), pending()
        repeat = Pending(first.prepared, key_id="key", correlation_id="", accepted_at=system_now())

        tasks = await started(*(gathering.store(p) for p in (first, repeat, second, third)))
        store.release.set()
        await asyncio.gather(*tasks)

        assert store.statements == [
            [first.event_id, second.event_id],
            [first.event_id, third.event_id],
        ]

    async def test_a_row_the_database_refuses_fails_its_own_event_only(self) -> None:
        items = [pending() for _ in range(4)]
        store = ScriptedStore(bad={items[2].event_id})
        gathering = Gathering(store, statements=1, max_events=1000)

        tasks = await started(*(gathering.store(p) for p in items))
        store.release.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)

        assert isinstance(outcomes[2], ValueError)
        assert all(isinstance(outcomes[i], Receipt) for i in (0, 1, 3))
        # The statement failed, and each of its events was tried alone.
        ids = [p.event_id for p in items]
        assert store.statements == [ids, *([i] for i in ids)]

    async def test_the_database_unreachable_answers_every_event_of_the_statement_at_once(
        self,
    ) -> None:
        store = ScriptedStore(error=DependencyUnavailable("database", "refused"))
        gathering = Gathering(store, statements=1, max_events=1000)
        items = [pending() for _ in range(3)]

        tasks = await started(*(gathering.store(p) for p in items))
        store.release.set()
        outcomes = await asyncio.gather(*tasks)

        assert all(isinstance(o, DependencyUnavailable) for o in outcomes)
        assert len(store.statements) == 1  # not tried again one by one

    async def test_a_request_that_goes_away_leaves_the_others_answered(self) -> None:
        store = ScriptedStore()
        gathering = Gathering(store, statements=1, max_events=1000)
        items = [pending() for _ in range(3)]

        tasks = await started(*(gathering.store(p) for p in items))
        tasks[1].cancel()
        store.release.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)

        assert isinstance(outcomes[1], asyncio.CancelledError)
        assert isinstance(outcomes[0], Receipt) and isinstance(outcomes[2], Receipt)
        assert store.statements == [[p.event_id for p in items]]


@pytest.mark.parametrize("microsecond", [0, 120])
@pytest.mark.parametrize("duplicate", [False, True])
def test_a_receipt_is_written_as_its_response_model_renders_it(
    microsecond: int, duplicate: bool
) -> None:
    receipt = Receipt(
        UUID("0d3c1a52-5b7e-4e59-9f62-1f0c2b7b8f11"),
        datetime(2026, 12, 1, 8, 30, 5, microsecond, tzinfo=UTC),
        duplicate=duplicate,
    )

    written = receipt_json(receipt)

    assert written == ReceiptOut.model_validate(asdict(receipt)).model_dump_json().encode()
