"""The text content hashes are taken over never changes (a repeat of an event accepted long
ago must still be recognised), and the message intake publishes is the canonical JSON of its
record, however it is built."""

import json
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.payloads import canonical_bytes, canonical_json, event_record

# What an event payload holds: JSON values with text in any script (a str with a lone
# surrogate cannot be encoded at all, so none is generated).
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)


def reference(value: Any) -> str:
    """The canonical form as it was first defined, with the standard library."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=500, deadline=None)
@given(JSON_VALUES)
def test_canonical_json_is_the_text_content_hashes_were_first_taken_over(value: Any) -> None:
    assert canonical_json(value) == reference(value)


@settings(max_examples=500, deadline=None)
@given(JSON_VALUES)
def test_the_bytes_content_hashes_are_taken_over_are_that_text_in_utf_8(value: Any) -> None:
    assert canonical_bytes(value) == reference(value).encode()


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
    payload_json = reference(payload)

    value = event_record(payload_json, accepted_at="2026-11-28T01:30:01+00:00", key_id="ab12")

    record = {
        "schema_version": 1,
        "event": payload,
        "accepted_at": "2026-11-28T01:30:01+00:00",
        "key_id": "ab12",
    }
    assert value == reference(record).encode()
    assert json.loads(value)["event"] == payload
