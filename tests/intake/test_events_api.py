"""POST /v1/events and GET /v1/events/{id}: durable acceptance, duplicates, conflicts,
rejections that store nothing, and keys with their scopes."""

import json
from typing import Any

import httpx
import pytest

from shared.config import Settings
from shared.db import Database
from tests.conftest import COUNTY, SIBLING_VILLAGE, TOWNSHIP, VILLAGE, bearer
from tests.support import events
from tests.support.intake import (
    journal_has,
    published,
    published_ids,
    wait_outbox_drained,
)
from tests.support.metrics import sample

pytestmark = pytest.mark.usefixtures("relay_control")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    return body


class TestAccept:
    async def test_accepted_event_is_published_keyed_by_county_with_its_content(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database, settings: Settings
    ) -> None:
        event = events.visit(VILLAGE, destination="city", headcount=6, category="土地征收")
        response = await intake.post(
            "/v1/events", json=event, headers=bearer(keys["township_desk"])
        )

        assert response.status_code == 202, response.text
        receipt = response.json()
        assert receipt["event_id"] == event["event_id"] and receipt["duplicate"] is False
        await wait_outbox_drained(db)
        messages = [
            m
            for m in await published(settings)
            if m["value"]["event"]["event_id"] == event["event_id"]
        ]
        assert len(messages) == 1
        message = messages[0]
        assert message["key"] == COUNTY.encode()
        assert message["headers"]["event_id"] == event["event_id"].encode()
        # Free text (here the category) stays in intake: tests/intake/test_free_text.py.
        assert message["value"]["event"] == {k: v for k, v in event.items() if k != "category"}
        assert message["value"]["accepted_at"].replace("+00:00", "Z") == receipt["accepted_at"]

    async def test_repeat_is_200_with_the_same_receipt_and_published_once(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database, settings: Settings
    ) -> None:
        event = events.visit(VILLAGE, headcount=2)
        first = await intake.post("/v1/events", json=event, headers=bearer(keys["county_desk"]))
        # The same instant written with another offset is the same content.
        again = event | {"occurred_at": "2018-06-03T01:30:00Z"}
        second = await intake.post("/v1/events", json=again, headers=bearer(keys["county_desk"]))

        assert first.status_code == 202
        assert second.status_code == 200
        assert second.json() == first.json() | {"duplicate": True}
        await wait_outbox_drained(db)
        assert published_ids(await published(settings)).count(event["event_id"]) == 1

    async def test_same_id_with_other_content_is_409_and_the_first_is_kept(
        self, intake: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        event = events.visit(VILLAGE, headcount=2)
        await intake.post("/v1/events", json=event, headers=bearer(keys["county_desk"]))
        response = await intake.post(
            "/v1/events", json=event | {"headcount": 3}, headers=bearer(keys["county_desk"])
        )

        assert_problem(response, 409)
        stored = await intake.get(
            f"/v1/events/{event['event_id']}", headers=bearer(keys["county_desk"])
        )
        assert stored.json()["headcount"] == 2

    async def test_petitioner_ref_is_never_stored_or_published_as_sent(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database, settings: Settings
    ) -> None:
        event = events.visit(VILLAGE, petitioner_ref="张三 340722199001011234")
        await intake.post("/v1/events", json=event, headers=bearer(keys["county_desk"]))
        stored = await intake.get(
            f"/v1/events/{event['event_id']}", headers=bearer(keys["county_desk"])
        )
        await wait_outbox_drained(db)
        message = next(
            m
            for m in await published(settings)
            if m["value"]["event"]["event_id"] == event["event_id"]
        )

        for ref in (stored.json()["petitioner_ref"], message["value"]["event"]["petitioner_ref"]):
            assert "340722199001011234" not in ref and ref.startswith("hmac-sha256:")
        # Keyed hashing is stable, so a repeat visitor is recognisable.
        again = events.visit(VILLAGE, petitioner_ref="张三 340722199001011234")
        await intake.post("/v1/events", json=again, headers=bearer(keys["county_desk"]))
        stored_again = await intake.get(
            f"/v1/events/{again['event_id']}", headers=bearer(keys["county_desk"])
        )
        assert stored_again.json()["petitioner_ref"] == stored.json()["petitioner_ref"]


# A value may be a function, called when the test runs: a time relative to now must not be
# computed when the suite is collected, minutes before the test runs.
REJECTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown field", {"mood": "angry"}, "mood"),
    ("unknown unit", {"unit_code": "340722999999"}, "unit_code"),
    ("malformed unit code", {"unit_code": "34072210020"}, "unit_code"),
    (
        "destination below the unit",
        {"destination_level": "village", "unit_code": TOWNSHIP},
        "destination_level",
    ),
    ("headcount zero", {"headcount": 0}, "headcount"),
    ("headcount too large", {"headcount": 100_001}, "headcount"),
    ("time without offset", {"occurred_at": "2018-06-03T09:30:00"}, "occurred_at"),
    ("time in the future", {"occurred_at": lambda: events.in_future(10)}, "occurred_at"),
    (
        "reported down after acceptance",
        {"reported_at": lambda: events.in_future(10)},
        "reported_at",
    ),
    ("reported down without offset", {"reported_at": "2018-06-03T09:30:00"}, "reported_at"),
    ("unknown destination", {"destination_level": "moon"}, "destination_level"),
    (
        "event on a city unit",
        {"unit_code": "340700000000", "destination_level": "province"},
        "unit_code",
    ),
    ("bad event id", {"event_id": "not-a-uuid"}, "event_id"),
]


class TestRejections:
    @pytest.mark.parametrize(
        ("change", "field"), [(c, f) for _, c, f in REJECTIONS], ids=[n for n, _, _ in REJECTIONS]
    )
    async def test_invalid_event_is_422_naming_the_field_and_stores_nothing(
        self,
        intake: httpx.AsyncClient,
        keys: dict[str, str],
        db: Database,
        settings: Settings,
        change: dict[str, Any],
        field: str,
    ) -> None:
        event = events.visit(VILLAGE) | {k: v() if callable(v) else v for k, v in change.items()}
        response = await intake.post("/v1/events", json=event, headers=bearer(keys["admin"]))

        body = assert_problem(response, 422)
        assert field in [error["field"] for error in body["errors"]]
        if change.get("event_id") != "not-a-uuid":
            assert not await journal_has(db, event["event_id"])

    async def test_unknown_type_is_422(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database
    ) -> None:
        event = events.visit(VILLAGE) | {"type": "complaint"}
        body = assert_problem(
            await intake.post("/v1/events", json=event, headers=bearer(keys["admin"])), 422
        )
        assert body["errors"][0]["field"] == "type"
        assert not await journal_has(db, event["event_id"])

    @pytest.mark.parametrize(
        ("content_type", "accepted"),
        [
            (None, True),
            ("application/json; charset=utf-8", True),
            ("application/vnd.sanwu+json", True),
            ("text/plain", False),
            ("application/x-www-form-urlencoded", False),
        ],
    )
    async def test_a_body_is_read_as_json_only_when_its_type_says_json_or_says_nothing(
        self,
        intake: httpx.AsyncClient,
        keys: dict[str, str],
        db: Database,
        content_type: str | None,
        accepted: bool,
    ) -> None:
        event = events.visit(VILLAGE)
        headers = bearer(keys["admin"]) | ({"Content-Type": content_type} if content_type else {})
        # Raw content: httpx sends no Content-Type of its own.
        response = await intake.post(
            "/v1/events", content=json.dumps(event).encode(), headers=headers
        )

        if accepted:
            assert response.status_code == 202, response.text
        else:
            body = assert_problem(response, 422)
            assert body["errors"][0]["type"] == "content_type"
        assert await journal_has(db, event["event_id"]) is accepted

    async def test_a_body_that_is_not_json_is_422_and_stores_nothing(
        self, intake: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        response = await intake.post(
            "/v1/events",
            content=b'{"event_id": ',
            headers=bearer(keys["admin"]) | {"Content-Type": "application/json"},
        )

        body = assert_problem(response, 422)
        assert body["errors"][0]["type"] == "json_invalid"

    async def test_correction_needs_a_reason_and_a_known_new_unit(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database
    ) -> None:
        target = events.visit(VILLAGE)
        no_reason = events.voided(target) | {"reason": "  "}
        unknown_unit = events.reattributed(target, "340722199999")

        body = assert_problem(
            await intake.post("/v1/events", json=no_reason, headers=bearer(keys["admin"])), 422
        )
        assert [e["field"] for e in body["errors"]] == ["reason"]
        body = assert_problem(
            await intake.post("/v1/events", json=unknown_unit, headers=bearer(keys["admin"])), 422
        )
        assert [e["field"] for e in body["errors"]] == ["new_unit_code"]
        assert not await journal_has(db, no_reason["event_id"])
        assert not await journal_has(db, unknown_unit["event_id"])

    async def test_correction_may_arrive_before_its_target(
        self, intake: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        target = events.visit(VILLAGE)  # never posted
        response = await intake.post(
            "/v1/events", json=events.voided(target), headers=bearer(keys["admin"])
        )
        assert response.status_code == 202

    async def test_rejected_events_are_never_published(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database, settings: Settings
    ) -> None:
        bad = events.visit(VILLAGE, headcount=0)
        sibling = events.visit(SIBLING_VILLAGE)
        good = events.visit(VILLAGE)
        await intake.post("/v1/events", json=bad, headers=bearer(keys["admin"]))
        await intake.post("/v1/events", json=sibling, headers=bearer(keys["township_desk"]))
        await intake.post("/v1/events", json=good, headers=bearer(keys["admin"]))
        await wait_outbox_drained(db)

        ids = published_ids(await published(settings))
        assert good["event_id"] in ids
        assert bad["event_id"] not in ids and sibling["event_id"] not in ids


class TestKeys:
    @pytest.mark.parametrize(
        "authorization",
        [None, "Bearer sanwu_000000000000_nope", "Bearer garbage", "Basic dXNlcjpwYXNz"],
        ids=["no key", "unknown key", "malformed key", "wrong scheme"],
    )
    async def test_missing_or_unknown_key_is_401_and_stores_nothing(
        self, intake: httpx.AsyncClient, db: Database, authorization: str | None
    ) -> None:
        event = events.visit(VILLAGE)
        headers = {"Authorization": authorization} if authorization else {}
        assert_problem(await intake.post("/v1/events", json=event, headers=headers), 401)
        assert not await journal_has(db, event["event_id"])

    async def test_a_bad_body_without_a_key_is_401_not_a_report_of_its_fields(
        self, intake: httpx.AsyncClient
    ) -> None:
        event = events.visit(VILLAGE) | {"headcount": "many"}
        assert_problem(await intake.post("/v1/events", json=event), 401)

    async def test_desk_key_outside_its_scope_is_403_and_stores_nothing(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database
    ) -> None:
        event = events.visit(SIBLING_VILLAGE)
        body = assert_problem(
            await intake.post("/v1/events", json=event, headers=bearer(keys["township_desk"])), 403
        )
        assert "errors" not in body
        assert not await journal_has(db, event["event_id"])

    async def test_reattribution_to_a_unit_outside_the_scope_is_403(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database
    ) -> None:
        correction = events.reattributed(events.visit(VILLAGE), SIBLING_VILLAGE)
        assert_problem(
            await intake.post("/v1/events", json=correction, headers=bearer(keys["township_desk"])),
            403,
        )
        assert not await journal_has(db, correction["event_id"])

    async def test_reader_key_may_not_post(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database
    ) -> None:
        event = events.visit(VILLAGE)
        assert_problem(
            await intake.post("/v1/events", json=event, headers=bearer(keys["county_reader"])), 403
        )
        assert not await journal_has(db, event["event_id"])


class TestBatch:
    async def test_each_item_gets_its_own_result_in_order(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database
    ) -> None:
        accepted = events.visit(VILLAGE)
        earlier = events.visit(VILLAGE)
        await intake.post("/v1/events", json=earlier, headers=bearer(keys["township_desk"]))
        invalid = events.visit(VILLAGE, headcount=0)
        outside = events.visit(SIBLING_VILLAGE)
        conflicting = earlier | {"headcount": 9}
        repeated_in_batch = dict(accepted)
        batch = [
            accepted,
            earlier,
            invalid,
            outside,
            conflicting,
            repeated_in_batch,
            {"type": "incident"},
        ]

        response = await intake.post(
            "/v1/events/batch", json={"events": batch}, headers=bearer(keys["township_desk"])
        )

        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [r["status"] for r in results] == [
            "accepted",
            "duplicate",
            "rejected",
            "rejected",
            "rejected",
            "duplicate",
            "rejected",
        ]
        assert [r["event_id"] for r in results[:6]] == [e["event_id"] for e in batch[:6]]
        assert results[2]["error"]["status"] == 422
        assert results[2]["error"]["errors"][0]["field"] == "headcount"
        assert results[3]["error"]["status"] == 403
        assert results[4]["error"]["status"] == 409
        assert await journal_has(db, accepted["event_id"])
        assert not await journal_has(db, invalid["event_id"])
        assert not await journal_has(db, outside["event_id"])

    async def test_more_than_1000_events_is_422_and_stores_nothing(
        self, intake: httpx.AsyncClient, keys: dict[str, str], db: Database
    ) -> None:
        batch = [events.visit(VILLAGE) for _ in range(1001)]
        body = assert_problem(
            await intake.post(
                "/v1/events/batch", json={"events": batch}, headers=bearer(keys["admin"])
            ),
            422,
        )
        assert body["errors"][0]["field"] == "events"
        assert not await journal_has(db, batch[0]["event_id"])


class TestRead:
    async def test_stored_event_shows_its_corrections_and_who_sent_them(
        self, intake: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        target = events.visit(VILLAGE, headcount=7)
        correction = events.voided(target)
        await intake.post("/v1/events", json=target, headers=bearer(keys["township_desk"]))
        await intake.post("/v1/events", json=correction, headers=bearer(keys["county_desk"]))

        response = await intake.get(
            f"/v1/events/{target['event_id']}", headers=bearer(keys["county_reader"])
        )

        assert response.status_code == 200
        body = response.json()
        assert body["headcount"] == 7 and body["unit_code"] == VILLAGE
        assert body["key_id"] == keys["township_desk"].split("_")[1]
        assert [c["event_id"] for c in body["corrections"]] == [correction["event_id"]]
        assert body["corrections"][0]["key_id"] == keys["county_desk"].split("_")[1]

    async def test_unknown_event_is_404_and_outside_scope_is_403(
        self, intake: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        event = events.visit(VILLAGE)
        await intake.post("/v1/events", json=event, headers=bearer(keys["township_desk"]))

        assert_problem(
            await intake.get(f"/v1/events/{events.new_id()}", headers=bearer(keys["admin"])), 404
        )
        body = assert_problem(
            await intake.get(
                f"/v1/events/{event['event_id']}", headers=bearer(keys["sibling_reader"])
            ),
            403,
        )
        assert VILLAGE not in body["detail"]


async def test_health_readiness_and_metrics(intake: httpx.AsyncClient) -> None:
    assert (await intake.get("/healthz")).json() == {"status": "ok"}
    ready = await intake.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": True, "kafka": True}


async def test_metrics_count_accepted_duplicate_and_rejected_events(
    intake: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    names = {
        "accepted": ("sanwu_intake_events_accepted_total", {"type": "incident"}),
        "duplicate": ("sanwu_intake_events_duplicate_total", {"type": "incident"}),
        "rejected": ("sanwu_intake_events_rejected_total", {}),
    }
    before = {k: await sample(intake, name, **labels) for k, (name, labels) in names.items()}
    event = events.incident(VILLAGE)
    for payload in (event, event, event | {"kind": "other"}):  # new, repeat, conflict
        await intake.post("/v1/events", json=payload, headers=bearer(keys["county_desk"]))

    after = {k: await sample(intake, name, **labels) for k, (name, labels) in names.items()}
    assert {k: after[k] - before[k] for k in names} == dict.fromkeys(names, 1.0)


async def test_openapi_documents_the_event_union(intake: httpx.AsyncClient) -> None:
    schema = (await intake.get("/openapi.json")).json()
    names = set(schema["components"]["schemas"])
    assert {
        "PetitionVisit",
        "Incident",
        "PublicOpinion",
        "EventVoided",
        "EventReattributed",
    } <= names
