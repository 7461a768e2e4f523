"""Work records through intake (screening meetings, satisfaction ratings): accepted and
published like visits, a matter_ref only as its keyed hash, a meeting's summary never on the
topic, every rejection a problem+json that stores nothing (singly and as one item of a batch
whose other items are still accepted), idempotency, and voids within the key's scope."""

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from shared.config import Settings
from shared.db import Database
from shared.events import EventRecord, RecordedSatisfactionRating, RecordedScreeningMeeting
from tests.conftest import SIBLING_VILLAGE, VILLAGE, bearer
from tests.support import events
from tests.support.intake import journal_has, published, wait_outbox_drained
from tests.support.stack import read_topic

pytestmark = pytest.mark.usefixtures("relay_control")

MEETING_TIME = "2018-06-04T19:00:00+08:00"


def meeting(unit_code: str = VILLAGE, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": events.new_id(),
        "type": "screening_meeting",
        "unit_code": unit_code,
        "occurred_at": MEETING_TIME,
        "attendees": 9,
        "disputes_found": 2,
        "disputes_resolved": 1,
    } | fields


def rating(unit_code: str = VILLAGE, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": events.new_id(),
        "type": "satisfaction_rating",
        "unit_code": unit_code,
        "occurred_at": "2018-06-20T11:00:00+08:00",
        "rating": "satisfied",
        "source": "third_party",
    } | fields


def in_utc(moment: str) -> str:
    return datetime.fromisoformat(moment).astimezone(UTC).isoformat()


def marked(label: str) -> str:
    """A text no other test writes, to look for in raw bytes."""
    return f"{label}-{uuid.uuid4().hex}"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body


async def stored_nowhere(db: Database, event_id: str) -> bool:
    async with db.engine.connect() as connection:
        in_outbox = await connection.execute(
            sa.text("SELECT 1 FROM intake.outbox WHERE headers->>'event_id' = :id"),
            {"id": event_id},
        )
        queued = in_outbox.first() is not None
    return not queued and not await journal_has(db, event_id)


async def journal_text(db: Database, event_id: str) -> str:
    """The journal row as PostgreSQL holds it, as text."""
    async with db.engine.connect() as connection:
        row = await connection.execute(
            sa.text("SELECT j::text FROM intake.journal j WHERE event_id = :id"), {"id": event_id}
        )
        return str(row.scalar_one())


async def topic_values(settings: Settings, event_ids: set[str]) -> list[bytes]:
    wanted = {i.encode() for i in event_ids}
    return [
        value
        for _, _, value, headers in await read_topic(settings, settings.events_topic)
        if headers.get("event_id") in wanted
    ]


async def post_batch(
    intake: httpx.AsyncClient, key: str, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    response = await intake.post("/v1/events/batch", json={"events": items}, headers=bearer(key))
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


class TestAccept:
    async def test_both_types_are_accepted_and_published_without_the_meetings_summary(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database, settings: Settings
    ) -> None:
        summary = marked("村排查调处例会")
        held = meeting(summary=summary)
        rated = rating(rating="basically_satisfied", source="petitioner")

        answers = [
            await intake.post("/v1/events", json=e, headers=bearer(keys["township_desk"]))
            for e in (held, rated)
        ]

        assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
        await wait_outbox_drained(db)
        values = await topic_values(settings, {held["event_id"], rated["event_id"]})
        assert len(values) == 2
        assert all(summary.encode() not in value for value in values)
        records = {str(r.event_id): r for r in map(EventRecord.model_validate_json, values)}
        published_meeting = records[held["event_id"]].event
        assert isinstance(published_meeting, RecordedScreeningMeeting)
        assert published_meeting.summary is None and published_meeting.disputes_found == 2
        assert isinstance(records[rated["event_id"]].event, RecordedSatisfactionRating)
        # The journal keeps what was written, for desks of the scope.
        stored = await intake.get(
            f"/v1/events/{held['event_id']}", headers=bearer(keys["township_desk"])
        )
        assert stored.json()["summary"] == summary

    async def test_matter_ref_is_stored_and_published_only_as_the_petitioner_refs_keyed_hash(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database, settings: Settings
    ) -> None:
        raw = marked("信访事项编号")
        rated = rating(matter_ref=raw)
        in_batch = rating(matter_ref=raw)
        visited = events.visit(VILLAGE, petitioner_ref=raw)

        single = await intake.post("/v1/events", json=rated, headers=bearer(keys["county_desk"]))
        results = await post_batch(intake, keys["county_desk"], [in_batch, visited])

        assert single.status_code == 202, single.text
        assert [r["status"] for r in results] == ["accepted", "accepted"], results
        hashes = set()
        for event in (rated, in_batch):
            assert raw not in await journal_text(db, event["event_id"])
            stored = await intake.get(
                f"/v1/events/{event['event_id']}", headers=bearer(keys["county_desk"])
            )
            hashes.add(stored.json()["matter_ref"])
        await wait_outbox_drained(db)
        values = await topic_values(settings, {rated["event_id"], in_batch["event_id"]})
        assert len(values) == 2 and all(raw.encode() not in value for value in values)
        hashes |= {json.loads(value)["event"]["matter_ref"] for value in values}
        # One keyed hash, the petitioner_ref's: stable, so a matter is recognisable.
        visit_message = next(
            m
            for m in await published(settings)
            if m["value"]["event"]["event_id"] == visited["event_id"]
        )
        assert hashes == {visit_message["value"]["event"]["petitioner_ref"]}
        assert next(iter(hashes)).startswith("hmac-sha256:")

    async def test_a_repeat_with_the_same_matter_ref_is_a_duplicate(
        self, intake: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        rated = rating(matter_ref="事项 2018-031")
        first = await intake.post("/v1/events", json=rated, headers=bearer(keys["county_desk"]))
        again = await intake.post("/v1/events", json=rated, headers=bearer(keys["county_desk"]))
        other = await intake.post(
            "/v1/events",
            json=rated | {"matter_ref": "事项 2018-032"},
            headers=bearer(keys["county_desk"]),
        )

        assert first.status_code == 202 and again.status_code == 200
        assert again.json() == first.json() | {"duplicate": True}
        assert_problem(other, 409)


class TestIdempotency:
    @pytest.mark.parametrize("build", [meeting, rating], ids=["meeting", "rating"])
    async def test_same_id_same_content_is_a_duplicate_and_other_content_409(
        self,
        intake: httpx.AsyncClient,
        keys: dict[str, str],
        build: Callable[..., dict[str, Any]],
    ) -> None:
        event = build()
        changed = (
            event | {"attendees": 10}
            if event["type"] == "screening_meeting"
            else event | {"rating": "dissatisfied"}
        )
        key = bearer(keys["township_desk"])

        first = await intake.post("/v1/events", json=event, headers=key)
        # The same instant written with another offset is the same content.
        same = await intake.post(
            "/v1/events", json=event | {"occurred_at": in_utc(event["occurred_at"])}, headers=key
        )
        conflict = await intake.post("/v1/events", json=changed, headers=key)
        results = await post_batch(intake, keys["township_desk"], [event, changed])

        assert first.status_code == 202, first.text
        assert same.status_code == 200 and same.json()["duplicate"] is True
        assert_problem(conflict, 409)
        assert [r["status"] for r in results] == ["duplicate", "rejected"]
        assert results[1]["error"]["status"] == 409
        stored = await intake.get(f"/v1/events/{event['event_id']}", headers=key)
        assert {k: stored.json()[k] for k in ("attendees", "rating") if k in event} == {
            k: event[k] for k in ("attendees", "rating") if k in event
        }


# (name, builder, change, status, the field named for a 422)
REJECTIONS: list[tuple[str, Callable[..., dict[str, Any]], dict[str, Any], int, str | None]] = [
    ("meeting without attendees", meeting, {"attendees": 0}, 422, "attendees"),
    ("disputes found negative", meeting, {"disputes_found": -1}, 422, "disputes_found"),
    (
        "more resolved than found",
        meeting,
        {"disputes_found": 1, "disputes_resolved": 2},
        422,
        "disputes_resolved",
    ),
    ("NUL in the summary", meeting, {"summary": "例会\x00纪要"}, 422, "summary"),
    ("meeting with an extra field", meeting, {"minutes": "纪要"}, 422, "minutes"),
    ("meeting outside the scope", meeting, {"unit_code": SIBLING_VILLAGE}, 403, None),
    ("meeting of an unknown unit", meeting, {"unit_code": "340722999999"}, 422, "unit_code"),
    (
        "meeting in the future",
        meeting,
        {"occurred_at": lambda: events.in_future(10)},
        422,
        "occurred_at",
    ),
    ("unknown rating", rating, {"rating": "very_satisfied"}, 422, "rating"),
    ("unknown source", rating, {"source": "neighbour"}, 422, "source"),
    ("NUL in the matter_ref", rating, {"matter_ref": "事项\x00"}, 422, "matter_ref"),
    ("rating with an extra field", rating, {"comment": "很好"}, 422, "comment"),
    ("rating outside the scope", rating, {"unit_code": SIBLING_VILLAGE}, 403, None),
    ("rating of an unknown unit", rating, {"unit_code": "340722999999"}, 422, "unit_code"),
    (
        "rating in the future",
        rating,
        {"occurred_at": lambda: events.in_future(10)},
        422,
        "occurred_at",
    ),
]
REJECTION_CASES = [pytest.param(b, c, s, f, id=n) for n, b, c, s, f in REJECTIONS]


def rejected(build: Callable[..., dict[str, Any]], change: dict[str, Any]) -> dict[str, Any]:
    return build(**{k: v() if callable(v) else v for k, v in change.items()})


class TestRejections:
    @pytest.mark.parametrize(("build", "change", "status", "field"), REJECTION_CASES)
    async def test_single_is_a_problem_and_stores_nothing(
        self,
        intake: httpx.AsyncClient,
        keys: dict[str, str],
        db: Database,
        build: Callable[..., dict[str, Any]],
        change: dict[str, Any],
        status: int,
        field: str | None,
    ) -> None:
        event = rejected(build, change)

        response = await intake.post(
            "/v1/events", json=event, headers=bearer(keys["township_desk"])
        )

        body = assert_problem(response, status)
        if field is not None:
            assert field in [error["field"] for error in body["errors"]], body
        assert await stored_nowhere(db, event["event_id"])

    @pytest.mark.parametrize(("build", "change", "status", "field"), REJECTION_CASES)
    async def test_in_a_batch_it_is_rejected_alone_and_the_others_accepted(
        self,
        intake: httpx.AsyncClient,
        keys: dict[str, str],
        db: Database,
        build: Callable[..., dict[str, Any]],
        change: dict[str, Any],
        status: int,
        field: str | None,
    ) -> None:
        before, bad, after = meeting(), rejected(build, change), rating()

        results = await post_batch(intake, keys["township_desk"], [before, bad, after])

        assert [r["status"] for r in results] == ["accepted", "rejected", "accepted"], results
        assert results[1]["event_id"] == bad["event_id"]
        assert results[1]["error"]["status"] == status
        if field is not None:
            assert field in [e["field"].rsplit(".", 1)[-1] for e in results[1]["error"]["errors"]]
        assert await stored_nowhere(db, bad["event_id"])
        assert await journal_has(db, before["event_id"])
        assert await journal_has(db, after["event_id"])

    async def test_the_openapi_example_of_each_type_is_accepted(
        self, intake: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        document = (await intake.get("/openapi.json")).json()
        body = document["paths"]["/v1/events"]["post"]["requestBody"]["content"]
        examples = body["application/json"]["examples"]
        for kind in ("screening_meeting", "satisfaction_rating"):
            example = examples[kind]["value"] | {"event_id": events.new_id()}
            response = await intake.post(
                "/v1/events", json=example, headers=bearer(keys["county_desk"])
            )
            assert response.status_code == 202, response.text


class TestVoid:
    @pytest.mark.parametrize("build", [meeting, rating], ids=["meeting", "rating"])
    async def test_a_desk_of_the_scope_voids_it_and_another_desk_may_not(
        self,
        intake: httpx.AsyncClient,
        keys: dict[str, str],
        db: Database,
        build: Callable[..., dict[str, Any]],
    ) -> None:
        record = build()
        posted = await intake.post("/v1/events", json=record, headers=bearer(keys["township_desk"]))
        assert posted.status_code == 202, posted.text
        foreign, foreign_in_batch = events.voided(record), events.voided(record)
        void = events.voided(record, reason="核查：例会记录重复登记")

        refused = await intake.post(
            "/v1/events", json=foreign, headers=bearer(keys["sibling_desk"])
        )
        results = await post_batch(intake, keys["sibling_desk"], [foreign_in_batch])
        accepted = await intake.post("/v1/events", json=void, headers=bearer(keys["county_desk"]))

        assert_problem(refused, 403)
        assert results[0]["status"] == "rejected" and results[0]["error"]["status"] == 403
        assert await stored_nowhere(db, foreign["event_id"])
        assert await stored_nowhere(db, foreign_in_batch["event_id"])
        assert accepted.status_code == 202, accepted.text
        stored = await intake.get(
            f"/v1/events/{record['event_id']}", headers=bearer(keys["township_desk"])
        )
        assert [c["event_id"] for c in stored.json()["corrections"]] == [void["event_id"]]

    async def test_a_void_in_the_same_batch_is_accepted_after_its_record(
        self, intake: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        record = rating(matter_ref="事项 2018-077")
        void = events.voided(record)

        results = await post_batch(intake, keys["township_desk"], [record, void])

        assert [r["status"] for r in results] == ["accepted", "accepted"], results
