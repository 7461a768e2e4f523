"""The applications service under faults: its status consumer killed (-9 in effect) before and
after a batch's transaction commits changes nothing once it is back (every flag and clearing
recorded once, the view at the newest versions); with Kafka down, bureaus keep acting and their
steps are published when it returns.

These stop Kafka and kill processes: `make test` runs them on a stack of their own
(docs/operations.md, "Tests")."""

import asyncio
import json
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from services.applications.config import ApplicationsSettings
from services.applications.consumers import CRASH_EXIT_CODE
from services.applications.main import create_app
from services.applications.workflow import UnitState
from shared import kafka
from shared.access import service as access_service
from shared.access.models import Role
from shared.config import DEFAULT_CAMPAIGN_FILE, Settings
from shared.db import Database
from shared.status import UnitStatus
from tests.conftest import COUNTY, VILLAGE
from tests.support.app import bearer, serve
from tests.support.dynamic import put_application, steps_of, stored_statuses
from tests.support.reporting import StatusPublisher, status, wait_committed
from tests.support.stack import ROOT, read_topic
from tests.support.waiting import poll

pytestmark = [pytest.mark.faults, pytest.mark.slow]

STACK = str(ROOT / "deploy" / "stack.sh")
SANWU = str(ROOT / ".venv" / "bin" / "sanwu")
CITY = "340700000000"
FLAG_ACTIONS = ("flagged", "flag_cleared")


def demo_villages(count: int) -> list[str]:
    rows = (ROOT / "data" / "demo-units.csv").read_text(encoding="utf-8").splitlines()
    return [r.split(",")[0] for r in rows if r.split(",")[2:3] == ["village"]][:count]


@pytest.fixture
async def own_topics(settings: Settings) -> AsyncIterator[ApplicationsSettings]:
    """A topic prefix of the test's own: its status topic holds only what the test publishes."""
    own = ApplicationsSettings(
        topic_prefix=f"test-{uuid.uuid4().hex[:10]}.", applications_batch_size=20
    )
    await kafka.ensure_topics(own)
    yield own
    await kafka.delete_topics(
        own, [own.status_topic, own.application_topic, own.dead_letter_topic, own.events_topic]
    )


def history_of(statuses: list[UnitStatus]) -> dict[str, list[str]]:
    """The flag steps each unit (awarded throughout) must get, from its statuses in order."""
    expected: dict[str, list[str]] = {}
    flagged: dict[str, bool] = {}
    for change in statuses:
        code = change.unit_code
        if not change.three_no and not flagged.get(code):
            expected.setdefault(code, []).append("flagged")
        elif change.three_no and flagged.get(code):
            expected.setdefault(code, []).append("flag_cleared")
        flagged[code] = not change.three_no
    return expected


async def consume(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as output:
        return await asyncio.create_subprocess_exec(
            SANWU, "applications", "consume", env=env, stdout=output, stderr=output
        )


@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
async def test_the_consumer_killed_around_its_commit_changes_nothing(
    point: str, own_topics: ApplicationsSettings, db: Database, tmp_path: Path
) -> None:
    period = f"t-killed-{point}"
    villages = demo_villages(40)
    application_id = await put_application(
        db, period=period, units=dict.fromkeys(villages, UnitState.awarded)
    )
    statuses = [status(v, period, 1, three_no=False) for v in villages]
    statuses += [status(v, period, 2, three_no=True) for v in villages]
    statuses += [status(v, period, 3, three_no=False) for v in villages[::2]]
    publisher = StatusPublisher(own_topics)  # type: ignore[arg-type]
    await publisher.start()
    try:
        sent = await publisher.publish(*statuses)
    finally:
        await publisher.stop()
    env = os.environ | {
        "SANWU_TOPIC_PREFIX": own_topics.topic_prefix,
        "SANWU_APPLICATIONS_BATCH_SIZE": "20",
        "SANWU_LOG_JSON": "false",
    }
    log = tmp_path / "consumer.log"

    crashing = await consume(env | {"SANWU_APPLICATIONS_CRASH_AT": point}, log)
    assert await asyncio.wait_for(crashing.wait(), 90) == CRASH_EXIT_CODE, log.read_text()
    at_crash = await stored_statuses(db, period)
    if point == "before_commit":
        assert at_crash == {}  # the batch it died in was rolled back
    else:
        assert 0 < len(at_crash) < len(villages)  # committed, its offsets not

    restarted = await consume(env, log)
    try:
        await wait_committed(
            own_topics,  # type: ignore[arg-type]
            sent,
            group=own_topics.consumer_group,
            timeout=90,
        )
    finally:
        restarted.send_signal(signal.SIGTERM)
        await asyncio.wait_for(restarted.wait(), 30)

    newest = {s.unit_code: s for s in statuses}  # the last one of each unit
    assert await stored_statuses(db, period) == {
        code: (s.version, s.three_no, s.counting_event_ids) for code, s in newest.items()
    }
    recorded: dict[str, list[str]] = {}
    for step in await steps_of(db, application_id):
        if step["action"] in FLAG_ACTIONS:
            recorded.setdefault(step["unit_code"], []).append(step["action"])
    assert recorded == history_of(statuses), log.read_text()[-3000:]


# --- Kafka down while the bureaus act ---------------------------------------------------------

PERIOD = "t-kafka-down"


async def stack_command(command: str) -> None:
    process = await asyncio.create_subprocess_exec(STACK, command)
    assert await process.wait() == 0, command


async def broker_answers(settings: Settings) -> bool:
    return await kafka.reachable(settings, timeout=3)


@pytest.fixture
async def bureaus(
    settings: Settings, db: Database, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """The applications service with its relay (and its window open), and bureau keys."""
    campaign = yaml.safe_load(DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8"))
    campaign["periods"].append({"id": PERIOD, "start": "2019-01-01", "end": "2019-12-31"})
    campaign_file = tmp_path / "campaign.yaml"
    campaign_file.write_text(yaml.safe_dump(campaign, allow_unicode=True), encoding="utf-8")
    own = ApplicationsSettings(
        campaign_file=campaign_file,
        application_window="01-01/12-31",
        applications_run_consumer=False,
        applications_relay_idle_poll_seconds=0.2,
    )
    async with db.engine.begin() as connection:
        keys = {
            name: await access_service.create(connection, role=Role.bureau, scope_code=scope)
            for name, scope in (("county", COUNTY), ("city", CITY))
        }
    async with serve(create_app(own), "http://applications") as client:
        yield client, keys


async def outbox_rows(db: Database) -> int:
    async with db.engine.connect() as connection:
        count = await connection.execute(sa.text("SELECT count(*) FROM applications.outbox"))
        return int(count.scalar_one())


@pytest.mark.timeout(240)
async def test_bureaus_act_while_kafka_is_down_and_their_steps_follow(
    bureaus: tuple[httpx.AsyncClient, dict[str, str]], settings: Settings, db: Database
) -> None:
    client, keys = bureaus
    await stack_command("kafka-stop")
    try:
        assert not await broker_answers(settings), "Kafka is still up"
        created = await client.post(
            "/v1/applications",
            json={"period": PERIOD, "units": [{"code": VILLAGE, "self_evaluation": "无三类问题"}]},
            headers=bearer(keys["county"]),
        )
        assert created.status_code == 201, created.text
        application: dict[str, Any] = created.json()
        submitted = await client.post(
            f"/v1/applications/{application['application_id']}/submit",
            headers=bearer(keys["county"]) | {"If-Match": '"1"'},
        )
        assert submitted.status_code == 200, submitted.text
        reviewed = await client.post(
            f"/v1/applications/{application['application_id']}/review",
            json={"decisions": [{"code": VILLAGE, "decision": "approve"}]},
            headers=bearer(keys["city"]) | {"If-Match": '"2"'},
        )
        assert reviewed.status_code == 200, reviewed.text
        assert not await broker_answers(settings), "Kafka came back while the bureaus acted"
        assert await outbox_rows(db) >= 3  # every step waits in the outbox
    finally:
        await stack_command("kafka-start")

    async def published() -> list[tuple[bytes | None, str]]:
        messages = await read_topic(settings, settings.application_topic, timeout=30)
        ours = [(key, json.loads(value)) for _, key, value, _ in messages]
        found = [
            (key, step["action"])
            for key, step in ours
            if step["application_id"] == application["application_id"]
        ]
        return found if len(found) >= 3 else []

    steps = await poll(published, timeout=120, message="the steps to be published", interval=1)
    assert steps == [(COUNTY.encode(), a) for a in ("created", "submitted", "approved")]
