"""The message intake publishes is the canonical JSON of its record, however it is built."""

import json
import uuid

from services.intake.service import event_record


def test_an_event_record_is_the_canonical_json_of_the_record() -> None:
    payload = {
        "type": "petition_visit",
        "event_id": str(uuid.uuid4()),
        "unit_code": "340722100201",
        "occurred_at": "2026-11-28T09:30:00+08:00",
        "destination_level": "city",
        "headcount": 6,
        "note": '集体访 "quoted" \\ ',
    }
    payload_json = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    value = event_record(payload_json, accepted_at="2026-11-28T01:30:01+00:00", key_id="ab12")

    record = {
        "schema_version": 1,
        "event": payload,
        "accepted_at": "2026-11-28T01:30:01+00:00",
        "key_id": "ab12",
    }
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert value == canonical.encode()
    assert json.loads(value)["event"] == payload
