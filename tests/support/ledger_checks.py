"""What the ledger tests share (tests/faults/test_ledger.py on the single broker,
tests/cluster/test_ledger_cluster.py on the three-node cluster): a database and topics of their
own, the processes under test, waiting for the pipeline to drain, and the checks of the
outcome against the journal, the topic and the reference model."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from services.migrations import migrate_all
from shared import kafka
from shared.access import service as access_service
from shared.access.models import Role
from shared.campaign import system_now
from shared.config import Settings
from shared.db import Database
from shared.registry.loader import load_file
from tests.conftest import COUNTY, DEMO_UNITS, TOWNSHIP
from tests.support import reference
from tests.support.ledger import Ledger
from tests.support.processes import Supervisor, free_port, sanwu, uvicorn
from tests.support.reference import CRITERIA
from tests.support.stack import (
    IsolatedStack,
    create_database,
    drop_database,
    new_stack,
)


def demo_villages() -> list[str]:
    tree = reference.unit_tree(DEMO_UNITS.read_text(encoding="utf-8"))
    return [code for code, (level, _) in tree.items() if level == "village"]


@dataclass
class Isolated:
    """A database and topic prefix of the ledger test's own, so every row and message in
    them came from its load."""

    stack: IsolatedStack
    settings: Settings
    db: Database
    desk_key: str
    township_key: str  # a narrower desk's: many of the county's events are outside it


@pytest.fixture
async def isolated(settings: Settings) -> AsyncIterator[Isolated]:
    stack = new_stack()
    await create_database(stack.database)
    own = Settings(database_url=stack.database_url, topic_prefix=stack.topic_prefix)
    await migrate_all(own)
    db = Database.from_settings(own, pool_size=2)
    async with db.engine.begin() as connection:
        await load_file(connection, DEMO_UNITS)
        key = await access_service.create(connection, role=Role.desk, scope_code=COUNTY)
        narrower = await access_service.create(connection, role=Role.desk, scope_code=TOWNSHIP)
    await kafka.ensure_topics(own)
    yield Isolated(stack, own, db, key, narrower)
    await db.dispose()
    await drop_database(stack.database)
    with contextlib.suppress(Exception):
        await kafka.delete_topics(own, [own.events_topic, own.status_topic, own.dead_letter_topic])


@pytest.fixture
def supervisor(isolated: Isolated, tmp_path: Path) -> Iterator[tuple[Supervisor, str]]:
    port = free_port()
    supervisor = Supervisor(
        env=isolated.stack.env() | {"SANWU_INTAKE_RUN_RELAY": "false", "SANWU_LOG_JSON": "true"},
        log_dir=tmp_path,
    )
    supervisor.add(
        "intake",
        uvicorn("services.intake.main:create_app", port),
        health_url=f"http://127.0.0.1:{port}/healthz",
    )
    supervisor.add("relay", sanwu("intake", "relay"))
    supervisor.add("evaluation", sanwu("evaluation", "consume"))
    supervisor.add("reporting", sanwu("reporting", "consume"))
    supervisor.start_all()
    yield supervisor, f"http://127.0.0.1:{port}"
    supervisor.stop_all()


async def journal_ids(db: Database) -> set[str]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(sa.text("SELECT event_id::text FROM intake.journal"))
        return {row[0] for row in rows}


async def scalar(db: Database, sql: str) -> int:
    async with db.engine.connect() as connection:
        return int((await connection.execute(sa.text(sql))).scalar_one())


async def wait_for(db: Database, what: str, sql: str, *, timeout: float = 180) -> None:
    """Poll until the query answers 0; `what` names the stage for the failure message."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (remaining := await scalar(db, sql)) != 0:
        if loop.time() > deadline:
            raise TimeoutError(f"{what}: {remaining} still pending")
        await asyncio.sleep(0.5)


async def wait_drained(db: Database) -> None:
    await wait_for(db, "intake outbox", "SELECT count(*) FROM intake.outbox")
    await wait_for(
        db,
        "evaluation applying the journal",
        """SELECT (SELECT count(*) FROM intake.journal)
                - (SELECT count(*) FROM evaluation.event WHERE known)
                - (SELECT count(*) FROM evaluation.correction)""",
    )
    await wait_for(db, "evaluation outbox", "SELECT count(*) FROM evaluation.outbox")
    await wait_for(
        db,
        "reporting applying the statuses",
        """SELECT count(*) FROM evaluation.status e
             LEFT JOIN reporting.unit_status r USING (unit_code, period)
            WHERE r.version IS DISTINCT FROM e.version""",
    )


async def accepted_in_order(db: Database) -> list[dict[str, Any]]:
    """The journal's events as the reference model takes them: with when they were accepted
    and the scope of the key that sent them (None: everywhere; NO_KEY: a key nobody has)."""
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                "SELECT j.payload, j.accepted_at, k.key_id IS NULL, "
                "CASE WHEN k.role = 'admin' THEN NULL ELSE k.scope_code END "
                "FROM intake.journal j LEFT JOIN access.api_keys k USING (key_id) "
                "ORDER BY j.accepted_at, j.event_id"
            )
        )
        return [
            payload
            | {"_accepted_at": accepted_at, "_scope": reference.NO_KEY if unknown else scope}
            for payload, accepted_at, unknown, scope in rows
        ]


Figures = tuple[bool, tuple[int, ...], tuple[int, ...], frozenset[str]]


async def evaluation_statuses(db: Database) -> dict[tuple[str, str], Figures]:
    counts = ", ".join(CRITERIA)
    people = ", ".join(f"{c}_people" for c in CRITERIA)
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                f"SELECT unit_code, period, three_no, ARRAY[{counts}], ARRAY[{people}], "
                "counting_event_ids::text[] FROM evaluation.status"
            )
        )
        return {(r[0], r[1]): (r[2], tuple(r[3]), tuple(r[4]), frozenset(r[5])) for r in rows}


async def reporting_statuses(db: Database) -> dict[tuple[str, str], tuple[Any, ...]]:
    columns = ", ".join(f"{kind}_{c}" for kind in ("batches", "people") for c in CRITERIA)
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                f"SELECT unit_code, period, three_no, version, {columns}, counting_event_ids "
                "FROM reporting.unit_status"
            )
        )
        return {(r[0], r[1]): (*r[2:-1], frozenset(r[-1])) for r in rows}


def expected_statuses(accepted: list[dict[str, Any]]) -> dict[tuple[str, str], Figures]:
    parents = reference.unit_tree(DEMO_UNITS.read_text(encoding="utf-8"))
    now = system_now()
    spec = yaml.safe_load(Settings().campaign_file.read_text(encoding="utf-8"))
    expected = reference.statuses(
        accepted,
        parents=parents,
        periods=reference.named_periods(spec, today=now.astimezone(reference.SHANGHAI).date()),
        now=now,
    )
    return {
        key: (
            value.three_no,
            tuple(value.counts[c] for c in CRITERIA),
            tuple(value.people[c] for c in CRITERIA),
            frozenset(value.event_ids),
        )
        for key, value in expected.items()
    }


def check_statuses(
    expected: dict[tuple[str, str], Figures], stored: dict[tuple[str, str], Figures]
) -> None:
    clean: Figures = (True, (0,) * 4, (0,) * 4, frozenset())
    wrong = {
        key: (expected.get(key, clean), stored.get(key, clean))
        for key in expected.keys() | stored.keys()
        if expected.get(key, clean) != stored.get(key, clean)
    }
    assert not wrong, (
        f"{len(wrong)} statuses differ from the reference, e.g. {list(wrong.items())[:3]}"
    )


def check_intake(ledger: Ledger, journal: set[str], on_topic: list[dict[str, object]]) -> None:
    assert set(ledger.ok) <= journal, "an accepted event was lost"
    refused_but_stored = set(ledger.failed) & journal
    assert not refused_but_stored, f"{len(refused_but_stored)} refused events were stored"
    assert journal <= set(ledger.ok) | set(ledger.unknown), "an event nobody sent was stored"
    topic_ids = {m["event"]["event_id"] for m in on_topic}  # type: ignore[index]
    assert topic_ids == journal, "the topic and the journal disagree"
    by_id: dict[str, object] = {}
    for message in on_topic:
        event_id = message["event"]["event_id"]  # type: ignore[index]
        assert by_id.setdefault(event_id, message) == message, "a republished event changed"
