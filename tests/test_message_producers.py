"""Each producer's own encoding of a message passes the one parser of its type
(`shared.messages`): intake's event record, spliced together for speed rather than encoded
through `EventRecord`, for every event type; an application step and an early warning as their
producers write them into the outbox. The real pipeline reads the same messages back from
their topics (tests/evaluation/test_published.py, test_warnings.py, tests/applications)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from asyncpg.pgproto.pgproto import UUID as DatabaseUUID

from services.applications.records import Step
from services.evaluation.warnings.records import StoredWarning
from services.intake.payloads import Pending, outbox_row, prepare
from shared.application_steps import ApplicationStep, StepAction
from shared.early_warning import EarlyWarning, WarningKind
from shared.events import EXAMPLES, FREE_TEXT_FIELDS, EventRecord, EventType, event_adapter
from shared.keyed_hash import HASH_PREFIX, KeyedHash
from shared.messages import parse_application_step, parse_early_warning, parse_event_record
from tests.support.messages import record_of

COUNTY = "340722000000"
ACCEPTED_AT = datetime(2018, 6, 3, 1, 31, 5, 120_000, tzinfo=UTC)
WARNING_ID = "5b0c7c1e-8f4d-4f0e-9b59-2f7d6a0c1e01"
EVENT_IDS = ("0b6f0c5e-6a53-4b52-9d5e-7a3c2d0b1f11", "5d1c2f0e-3b8a-4c6e-9f2d-1a7b8c9d0e21")


@pytest.mark.parametrize("event_type", list(EventType))
def test_intakes_outbox_record_of_every_event_type_passes_the_parser(
    event_type: EventType,
) -> None:
    example = EXAMPLES[event_type]
    prepared = prepare(
        event_adapter.validate_python(example), county_code=COUNTY, keyed_hash=KeyedHash("s")
    )
    pending = Pending(prepared, key_id="ab12", correlation_id="c-1", accepted_at=ACCEPTED_AT)
    message = outbox_row(pending)

    parsed = parse_event_record(record_of(message.key, message.value))

    assert isinstance(parsed, EventRecord), parsed
    assert message.key == COUNTY.encode()
    assert (parsed.accepted_at, parsed.key_id) == (ACCEPTED_AT, "ab12")
    published = parsed.event.model_dump(mode="json", exclude_none=True)
    # The example without its free text, its references hashed.
    expected = {k: v for k, v in example.items() if k not in FREE_TEXT_FIELDS}
    for ref in ("petitioner_ref", "matter_ref"):
        if ref in expected:
            assert published[ref].startswith(HASH_PREFIX)
            expected[ref] = published[ref]
    assert published == expected


def test_a_step_as_recorded_in_the_outbox_passes_the_parser() -> None:
    step = Step(
        step_id=41,
        application_id=DatabaseUUID("0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"),
        county_code=COUNTY,
        period="2018",
        unit_code="340722100201",
        action=StepAction.flagged,
        key_id=None,
        role=None,
        scope_code=None,
        reason=None,
        detail={"event_ids": list(EVENT_IDS), "status_version": 2},
        at=ACCEPTED_AT,
    )
    message = step.message()  # what `history.record_step` writes, key and value

    parsed = parse_application_step(record_of(message.key, message.model_dump_json().encode()))

    assert isinstance(parsed, ApplicationStep), parsed
    assert message.key == COUNTY.encode()
    assert parsed.model_dump(mode="json") == {
        "schema_version": 1,
        "step_id": 41,
        "application_id": "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
        "county_code": COUNTY,
        "period": "2018",
        "unit_code": "340722100201",
        "action": "flagged",
        "key_id": None,
        "role": None,
        "scope_code": None,
        "reason": None,
        "detail": {"event_ids": list(EVENT_IDS), "status_version": 2},
        "at": "2018-06-03T01:31:05.120000Z",
    }


@pytest.mark.parametrize("cleared", [False, True])
def test_a_warning_as_saved_in_the_outbox_passes_the_parser(cleared: bool) -> None:
    shanghai = timezone(timedelta(hours=8))
    warning = StoredWarning(
        warning_id=DatabaseUUID(WARNING_ID),  # as read back from the database
        kind=WarningKind.repeat_petitioner,
        unit_code="340722100201",
        scope="hmac-sha256:ab",
        cause_at=ACCEPTED_AT,
        raised_at=ACCEPTED_AT,
        cleared_at=ACCEPTED_AT.astimezone(shanghai) + timedelta(days=1) if cleared else None,
        event_ids=tuple(DatabaseUUID(i) for i in EVENT_IDS),
        detail={"visits": 3, "days": 90},
        version=2 if cleared else 1,
    )
    message = warning.message()  # what `WarningRepository.save` writes, key and value

    parsed = parse_early_warning(record_of(message.key, message.model_dump_json().encode()))

    assert isinstance(parsed, EarlyWarning), parsed
    assert message.key == WARNING_ID.encode()
    assert parsed.model_dump(mode="json") == {
        "schema_version": 1,
        "warning_id": WARNING_ID,
        "kind": "repeat_petitioner",
        "unit_code": "340722100201",
        "raised_at": "2018-06-03T01:31:05.120000Z",
        "cleared_at": "2018-06-04T09:31:05.120000+08:00" if cleared else None,
        "event_ids": list(EVENT_IDS),
        "detail": {"visits": 3, "days": 90},
        "version": 2 if cleared else 1,
    }
