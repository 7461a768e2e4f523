"""What people wrote (summary, reason, category, platform) stays in intake: it never reaches the
petition-event topic (kept forever), only desk and admin keys in scope read it back, and it is
removed from the journal once the retention has passed, while repeats stay duplicates."""

import asyncio
import json
import subprocess
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from services.intake.retention import purge_free_text
from shared.campaign import system_now
from shared.config import Settings
from shared.db import Database
from shared.events import (
    FREE_TEXT_FIELDS,
    EventRecord,
    Incident,
    RecordedIncident,
    event_adapter,
)
from tests.conftest import SIBLING_VILLAGE, VILLAGE, bearer
from tests.support import events
from tests.support.intake import wait_outbox_drained
from tests.support.processes import sanwu
from tests.support.stack import read_topic

pytestmark = pytest.mark.usefixtures("relay_control")

RETENTION = timedelta(days=1095)


def marked(label: str) -> str:
    """A text no other test writes, to look for in raw bytes."""
    return f"{label}-{uuid.uuid4().hex}"


def public_opinion(unit_code: str, *, platform: str, summary: str) -> dict[str, Any]:
    return {
        "event_id": events.new_id(),
        "type": "public_opinion",
        "unit_code": unit_code,
        "occurred_at": events.DEFAULT_TIME,
        "platform": platform,
        "summary": summary,
    }


def every_kind_with_free_text() -> tuple[list[dict[str, Any]], list[str]]:
    """A visit with a category, an incident, a public opinion, a void and a re-attribution,
    each with free text of its own; returns (events, the texts)."""
    texts = [marked(label) for label in ("类别", "事件摘要", "平台", "舆情摘要", "核减", "改属地")]
    visit = events.visit(VILLAGE, category=texts[0])
    incident = events.incident(VILLAGE) | {"summary": texts[1]}
    opinion = public_opinion(VILLAGE, platform=texts[2], summary=texts[3])
    voided = events.voided(incident, reason=texts[4])
    moved = events.reattributed(visit, SIBLING_VILLAGE, reason=texts[5])
    return [visit, incident, opinion, voided, moved], texts


async def post_all(
    intake: httpx.AsyncClient, key: str, posted: list[dict[str, Any]]
) -> list[httpx.Response]:
    return [await intake.post("/v1/events", json=e, headers=bearer(key)) for e in posted]


async def payload_of(db: Database, event_id: str) -> tuple[dict[str, Any], str]:
    """The event as intake keeps it (the journal's payload and the free text kept apart, while
    it is kept), and its content hash."""
    async with db.engine.connect() as connection:
        row = (
            await connection.execute(
                sa.text(
                    "SELECT j.payload || coalesce(t.fields, '{}'), j.content_hash "
                    "FROM intake.journal j LEFT JOIN intake.free_text t USING (event_id) "
                    "WHERE event_id = :id"
                ),
                {"id": event_id},
            )
        ).one()
    return row[0], row[1]


async def journal_payload(db: Database, event_id: str) -> dict[str, Any]:
    async with db.engine.connect() as connection:
        return (
            await connection.execute(
                sa.text("SELECT payload FROM intake.journal WHERE event_id = :id"),
                {"id": event_id},
            )
        ).scalar_one()


async def accepted_days_ago(db: Database, event_ids: list[str], *, days: float) -> datetime:
    """Date the acceptance of the events' free text back (as if they had been posted that long
    ago: the journal itself never changes); returns the moment `now` they are dated against."""
    now = system_now()
    async with db.engine.begin() as connection:
        await connection.execute(
            sa.text(
                "UPDATE intake.free_text SET accepted_at = :at "
                "WHERE event_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"at": now - timedelta(days=days), "ids": event_ids},
        )
    return now


async def test_no_free_text_reaches_the_topic_and_evaluation_still_reads_the_records(
    intake: httpx.AsyncClient, keys: dict[str, str], db: Database, settings: Settings
) -> None:
    posted, texts = every_kind_with_free_text()

    answers = await post_all(intake, keys["county_desk"], posted)

    assert [a.status_code for a in answers] == [202] * 5, [a.text for a in answers]
    await wait_outbox_drained(db)
    ours = {e["event_id"].encode() for e in posted}
    messages = [
        value
        for _, _, value, headers in await read_topic(settings, settings.events_topic)
        if headers.get("event_id") in ours
    ]
    assert len(messages) == 5
    for value in messages:
        for text in texts:
            assert text.encode() not in value
        event = json.loads(value)["event"]
        assert not FREE_TEXT_FIELDS & set(event), event
        record = EventRecord.model_validate_json(value)
        assert str(record.event_id) in {e["event_id"] for e in posted}
    # Intake still holds what was posted, apart from the journal row.
    for event in posted:
        payload = (await payload_of(db, event["event_id"]))[0]
        assert {k: payload[k] for k in FREE_TEXT_FIELDS & set(event)} == {
            k: event[k] for k in FREE_TEXT_FIELDS & set(event)
        }
        assert not FREE_TEXT_FIELDS & set(await journal_payload(db, event["event_id"]))


def test_records_parse_without_free_text_and_older_records_with_it_still_parse() -> None:
    incident = events.incident(VILLAGE)
    without = {k: v for k, v in incident.items() if k != "summary"}
    record = {"schema_version": 1, "accepted_at": "2026-11-28T01:30:01+00:00", "key_id": "ab12"}

    new = EventRecord.model_validate_json(json.dumps(record | {"event": without}))
    old = EventRecord.model_validate_json(json.dumps(record | {"event": incident}))
    built = EventRecord(
        event=event_adapter.validate_python(incident),
        accepted_at=system_now(),
        key_id="ab12",
    )

    assert isinstance(new.event, RecordedIncident) and isinstance(new.event, Incident)
    assert new.event.summary is None and old.event.summary == incident["summary"]
    assert built.event.event_id == old.event.event_id
    # Posting still requires it.
    with pytest.raises(ValueError, match="summary"):
        event_adapter.validate_python(without)


async def test_readers_get_events_without_free_text_desks_and_admins_with_it(
    intake: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    category, reason = marked("类别"), marked("核减")
    visit = events.visit(VILLAGE, category=category, headcount=3)
    voided = events.voided(visit, reason=reason)
    assert [
        a.status_code for a in await post_all(intake, keys["county_desk"], [visit, voided])
    ] == [
        202,
        202,
    ]

    seen = {}
    for name in ("county_reader", "township_reader", "county_desk", "township_desk", "admin"):
        response = await intake.get(f"/v1/events/{visit['event_id']}", headers=bearer(keys[name]))
        assert response.status_code == 200, response.text
        seen[name] = response.json()

    for name in ("county_reader", "township_reader"):
        body = seen[name]
        assert category not in json.dumps(body, ensure_ascii=False)
        assert "category" not in body and "reason" not in body["corrections"][0]
        assert body["headcount"] == 3 and body["corrections"][0]["type"] == "event_voided"
    for name in ("county_desk", "township_desk", "admin"):
        body = seen[name]
        assert body["category"] == category and body["corrections"][0]["reason"] == reason
    # Out of scope is still 403, whatever the role.
    outside = await intake.get(
        f"/v1/events/{visit['event_id']}", headers=bearer(keys["sibling_reader"])
    )
    assert outside.status_code == 403


async def test_the_purge_removes_free_text_past_the_retention_and_repeats_stay_duplicates(
    intake: httpx.AsyncClient, keys: dict[str, str], db: Database
) -> None:
    desk = keys["county_desk"]
    posted, _ = every_kind_with_free_text()
    recent = events.incident(VILLAGE) | {"summary": marked("近期摘要")}
    assert [a.status_code for a in await post_all(intake, desk, [*posted, recent])] == [202] * 6
    old_ids = [e["event_id"] for e in posted]
    hashes = {i: (await payload_of(db, i))[1] for i in old_ids}
    # Accepted just past the retention, and the recent one just inside it.
    await accepted_days_ago(db, old_ids, days=RETENTION.days + 0.01)
    now = await accepted_days_ago(db, [recent["event_id"]], days=RETENTION.days - 0.01)

    journaled = {i: await journal_payload(db, i) for i in old_ids}

    purged = await purge_free_text(db, now=now, retention=RETENTION, batch_size=2)

    assert purged == 5
    for event in posted:
        payload, content_hash = await payload_of(db, event["event_id"])
        assert not FREE_TEXT_FIELDS & set(payload), payload
        assert await journal_payload(db, event["event_id"]) == journaled[event["event_id"]]
        assert payload["event_id"] == event["event_id"] and payload["type"] == event["type"]
        assert content_hash == hashes[event["event_id"]]
    assert (await payload_of(db, recent["event_id"]))[0]["summary"] == recent["summary"]
    stored = await intake.get(f"/v1/events/{posted[1]['event_id']}", headers=bearer(desk))
    assert stored.status_code == 200 and "summary" not in stored.json()
    assert stored.json()["kind"] == posted[1]["kind"]

    # The same events again, free text and all: duplicates; other content: still a conflict.
    again = await post_all(intake, desk, posted)
    assert [a.status_code for a in again] == [200] * 5
    assert all(a.json()["duplicate"] is True for a in again)
    changed = posted[1] | {"summary": marked("另一摘要")}
    conflict = await intake.post("/v1/events", json=changed, headers=bearer(desk))
    assert conflict.status_code == 409
    assert await purge_free_text(db, now=now, retention=RETENTION) == 0


async def test_the_purge_command_purges_what_is_past_the_retention(
    intake: httpx.AsyncClient, keys: dict[str, str], db: Database
) -> None:
    incident = events.incident(VILLAGE) | {"summary": marked("命令摘要")}
    response = await intake.post("/v1/events", json=incident, headers=bearer(keys["county_desk"]))
    assert response.status_code == 202
    await accepted_days_ago(db, [incident["event_id"]], days=RETENTION.days + 1)

    done = await asyncio.to_thread(
        subprocess.run,
        sanwu("intake", "purge-free-text"),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) >= 1
    assert "summary" not in (await payload_of(db, incident["event_id"]))[0]
