"""The one parser of each message type (`shared.messages`): a valid message is returned as its
model, and every rule refuses what breaks it with its own reason."""

import json
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import pytest
from aiokafka import ConsumerRecord

from shared.application_steps import ApplicationStep, StepAction
from shared.consumer import Record, Rejected
from shared.dispute_steps import DisputeStep, Outcome
from shared.early_warning import EarlyWarning, WarningKind
from shared.events import EventRecord, EventType
from shared.indicators import UnitIndicators
from shared.messages import (
    MAX_COUNT,
    MAX_EVENT_IDS,
    MAX_VERSION,
    parse_application_step,
    parse_dispute_step,
    parse_early_warning,
    parse_event_record,
    parse_unit_indicators,
    parse_unit_status,
)
from shared.status import UnitStatus

UNIT = "340722100201"
COUNTY = "340722000000"
WARNING_ID = "5b0c7c1e-8f4d-4f0e-9b59-2f7d6a0c1e01"
STEP_APPLICATION = "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"


def record(value: dict[str, Any] | bytes | None, *, key: bytes | None) -> Record:
    body = json.dumps(value).encode() if isinstance(value, dict) else value
    return ConsumerRecord(
        topic="t",
        partition=0,
        offset=0,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=body,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(body or b""),
        headers=[],
    )


def reason_of(parsed: object) -> str:
    assert isinstance(parsed, Rejected), f"accepted: {parsed!r}"
    return parsed.reason


def status(**changed: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "unit_code": UNIT,
        "period": "2018",
        "three_no": False,
        "counts": {"skip_level": 1, "non_reception_site": 0, "collective": 0, "incident": 0},
        "people": {"skip_level": 3, "non_reception_site": 0, "collective": 0, "incident": 0},
        "counting_event_ids": ["0b6f0c5e-6a53-4b52-9d5e-7a3c2d0b1f11"],
        "changed_at": "2018-06-03T09:30:00+08:00",
        "version": 2,
    } | changed


def indicators(**changed: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "unit_code": UNIT,
        "period": "2018",
        "meetings_held": ["2018-06-01"],
        "ratings": {
            "petitioner": {"satisfied": 3, "basically_satisfied": 1, "dissatisfied": 0},
        },
        "changed_at": "2018-06-03T09:30:00+08:00",
        "version": 1,
    } | changed


def warning(**changed: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "warning_id": WARNING_ID,
        "kind": "repeat_petitioner",
        "unit_code": UNIT,
        "raised_at": "2018-06-03T09:30:00+08:00",
        "cleared_at": None,
        "event_ids": ["0b6f0c5e-6a53-4b52-9d5e-7a3c2d0b1f11"],
        "detail": {"visits": 3},
        "version": 1,
    } | changed


def step(**changed: Any) -> dict[str, Any]:
    return {
        "step_id": 7,
        "application_id": STEP_APPLICATION,
        "county_code": COUNTY,
        "period": "2018",
        "unit_code": UNIT,
        "action": "flagged",
        "key_id": None,
        "role": None,
        "scope_code": None,
        "reason": None,
        "detail": {"event_ids": []},
        "at": "2018-06-03T09:30:00+08:00",
    } | changed


STATUS_KEY = f"{UNIT}:2018".encode()


class TestEventRecord:
    def event_record(self) -> dict[str, Any]:
        visit = {
            "event_id": "0b6f0c5e-6a53-4b52-9d5e-7a3c2d0b1f11",
            "type": EventType.petition_visit.value,
            "unit_code": UNIT,
            "occurred_at": "2018-06-03T09:30:00+08:00",
            "destination_level": "city",
            "headcount": 6,
        }
        return {"event": visit, "accepted_at": "2018-06-03T09:31:00+08:00", "key_id": "k1"}

    def test_a_valid_record_is_its_model(self) -> None:
        parsed = parse_event_record(record(self.event_record(), key=UNIT.encode()))
        assert isinstance(parsed, EventRecord)
        assert parsed.event_id == UUID("0b6f0c5e-6a53-4b52-9d5e-7a3c2d0b1f11")
        assert parsed.event.unit_code == UNIT and parsed.key_id == "k1"

    def test_no_value_is_empty(self) -> None:
        parsed = parse_event_record(record(None, key=b"k"))
        assert parsed == Rejected("the message has no value", "empty")

    @pytest.mark.parametrize(
        "value",
        [
            b"{not json",
            json.dumps({"type": "petition_visit", "event_id": "x"}).encode(),
            json.dumps({"event": {"type": "petition_visit"}}).encode(),
        ],
    )
    def test_what_is_not_an_event_record_is_invalid(self, value: bytes) -> None:
        parsed = parse_event_record(record(value, key=b"k"))
        assert isinstance(parsed, Rejected) and parsed.kind == "invalid"
        assert parsed.reason.startswith("not an event record: ")

    def test_free_text_is_not_accepted_on_the_topic(self) -> None:
        value = self.event_record()
        value["event"] |= {"category": "土地征收", "unexpected": 1}
        assert "not an event record" in reason_of(parse_event_record(record(value, key=b"k")))

    def test_a_schema_version_other_than_1_is_refused(self) -> None:
        value = self.event_record() | {"schema_version": 2}
        assert "schema_version" in reason_of(parse_event_record(record(value, key=b"k")))


class TestUnitStatus:
    def test_a_valid_status_is_its_model(self) -> None:
        parsed = parse_unit_status(record(status(), key=STATUS_KEY))
        assert isinstance(parsed, UnitStatus)
        assert (parsed.unit_code, parsed.period, parsed.version) == (UNIT, "2018", 2)
        assert parsed.people.skip_level == 3 and parsed.counts.total == 1

    def test_the_highest_version_and_count_are_accepted(self) -> None:
        counts = {"skip_level": MAX_COUNT, "non_reception_site": 0, "collective": 0}
        value = status(version=MAX_VERSION, counts=counts | {"incident": 0})
        assert isinstance(parse_unit_status(record(value, key=STATUS_KEY)), UnitStatus)

    def test_a_tombstone_is_refused(self) -> None:
        reason = reason_of(parse_unit_status(record(None, key=STATUS_KEY)))
        assert reason == "no value (a tombstone); statuses are never deleted"

    @pytest.mark.parametrize(
        ("value", "key", "reason"),
        [
            (b"not json", STATUS_KEY, "not a unit status: "),
            (status(version="one"), STATUS_KEY, "not a unit status: version"),
            (status(extra=1), STATUS_KEY, "not a unit status: extra"),
            (status(), b"340722100202:2018", "is not unit_code:period"),
            (status(), None, "is not unit_code:period"),
            (status(schema_version=2), STATUS_KEY, "schema_version 2 is not understood"),
            (status(unit_code="3407221002"), b"3407221002:2018", "unit_code is not 12 digits"),
            (status(period="20 18"), f"{UNIT}:20 18".encode(), "period is not a period id"),
            (status(version=0), STATUS_KEY, f"version must lie within 1..{MAX_VERSION}"),
            (status(version=2**31), STATUS_KEY, f"version must lie within 1..{MAX_VERSION}"),
            (
                status(people={"skip_level": MAX_COUNT + 1}),
                STATUS_KEY,
                f"counts must lie within 0..{MAX_COUNT}",
            ),
            (status(counts={"incident": -1}), STATUS_KEY, "counts must lie within"),
            (status(changed_at="2018-06-03T09:30:00"), STATUS_KEY, "changed_at has no offset"),
        ],
    )
    def test_each_rule_refuses(self, value: Any, key: bytes | None, reason: str) -> None:
        assert reason in reason_of(parse_unit_status(record(value, key=key)))

    def test_every_problem_is_named(self) -> None:
        value = status(schema_version=3, version=0)
        reason = reason_of(parse_unit_status(record(value, key=b"other")))
        assert reason.count("; ") == 2


class TestUnitIndicators:
    def test_valid_indicators_are_their_model(self) -> None:
        parsed = parse_unit_indicators(record(indicators(), key=STATUS_KEY))
        assert isinstance(parsed, UnitIndicators)
        assert parsed.meetings_held == [date(2018, 6, 1)]
        assert parsed.all_ratings().satisfied == 3

    def test_a_tombstone_is_refused(self) -> None:
        reason = reason_of(parse_unit_indicators(record(None, key=STATUS_KEY)))
        assert reason == "no value (a tombstone); indicators are never deleted"

    @pytest.mark.parametrize(
        ("value", "key", "reason"),
        [
            (b"[]", STATUS_KEY, "not unit indicators: "),
            (indicators(ratings={"nowhere": {}}), STATUS_KEY, "not unit indicators: ratings"),
            (indicators(), f"{UNIT}:2019".encode(), "is not unit_code:period"),
            (indicators(schema_version=0), STATUS_KEY, "schema_version 0 is not understood"),
            (indicators(unit_code="x" * 12), f"{'x' * 12}:2018".encode(), "not 12 digits"),
            (indicators(period="/"), f"{UNIT}:/".encode(), "period is not a period id"),
            (indicators(version=0), STATUS_KEY, f"version must lie within 1..{MAX_VERSION}"),
            (indicators(version=2**31), STATUS_KEY, f"version must lie within 1..{MAX_VERSION}"),
            (
                indicators(ratings={"petitioner": {"dissatisfied": MAX_COUNT + 1}}),
                STATUS_KEY,
                f"rating counts must lie within 0..{MAX_COUNT}",
            ),
            (
                indicators(ratings={"petitioner": {"satisfied": -1}}),
                STATUS_KEY,
                "rating counts must lie within",
            ),
            (
                indicators(changed_at="2018-06-03T09:30:00"),
                STATUS_KEY,
                "changed_at has no offset",
            ),
        ],
    )
    def test_each_rule_refuses(self, value: Any, key: bytes, reason: str) -> None:
        assert reason in reason_of(parse_unit_indicators(record(value, key=key)))


class TestEarlyWarning:
    KEY = WARNING_ID.encode()

    def test_a_valid_warning_is_its_model(self) -> None:
        parsed = parse_early_warning(record(warning(), key=self.KEY))
        assert isinstance(parsed, EarlyWarning)
        assert parsed.kind is WarningKind.repeat_petitioner and parsed.cleared_at is None
        assert parsed.warning_id == UUID(WARNING_ID) and parsed.detail == {"visits": 3}

    def test_a_cleared_warning_and_many_events_are_accepted(self) -> None:
        value = warning(
            cleared_at="2018-07-01T00:00:00+08:00", event_ids=["e"] * MAX_EVENT_IDS, version=9
        )
        parsed = parse_early_warning(record(value, key=self.KEY))
        assert isinstance(parsed, EarlyWarning)
        assert parsed.cleared_at == datetime(2018, 6, 30, 16, tzinfo=UTC)

    def test_a_tombstone_is_refused(self) -> None:
        reason = reason_of(parse_early_warning(record(None, key=self.KEY)))
        assert reason == "no value (a tombstone); warnings are cleared, never deleted"

    @pytest.mark.parametrize(
        ("value", "key", "reason"),
        [
            (b"{}", KEY, "not an early warning: "),
            (warning(kind="loud"), KEY, "not an early warning: kind"),
            (warning(), UNIT.encode(), "is not the warning_id"),
            (warning(schema_version=2), KEY, "schema_version 2 is not understood"),
            (warning(unit_code="34072210020"), KEY, "unit_code is not 12 digits"),
            (warning(version=0), KEY, "version must be 1 or more"),
            (
                warning(event_ids=["e"] * (MAX_EVENT_IDS + 1)),
                KEY,
                f"more than {MAX_EVENT_IDS} event_ids",
            ),
            (warning(raised_at="2018-06-03T09:30:00"), KEY, "raised_at and cleared_at need"),
            (warning(cleared_at="2018-07-01T00:00:00"), KEY, "raised_at and cleared_at need"),
        ],
    )
    def test_each_rule_refuses(self, value: Any, key: bytes, reason: str) -> None:
        assert reason in reason_of(parse_early_warning(record(value, key=key)))


class TestApplicationStep:
    KEY = COUNTY.encode()

    def test_a_valid_step_is_its_model(self) -> None:
        parsed = parse_application_step(record(step(), key=self.KEY))
        assert isinstance(parsed, ApplicationStep)
        assert parsed.action is StepAction.flagged and parsed.schema_version == 1
        assert parsed.application_id == UUID(STEP_APPLICATION) and parsed.key_id is None

    def test_a_step_of_the_whole_application_by_a_key(self) -> None:
        value = step(unit_code=None, action="created", key_id="k1", role="county_applicant")
        parsed = parse_application_step(record(value, key=self.KEY))
        assert isinstance(parsed, ApplicationStep) and parsed.unit_code is None

    def test_a_tombstone_is_refused(self) -> None:
        reason = reason_of(parse_application_step(record(None, key=self.KEY)))
        assert reason == "no value (a tombstone); steps are kept forever"

    @pytest.mark.parametrize(
        ("value", "key", "reason"),
        [
            (b"null", KEY, "not an application step: "),
            (step(action="archived"), KEY, "not an application step: action"),
            (step(application_id="x"), KEY, "not an application step: application_id"),
            (step(), UNIT.encode(), "is not the county_code"),
            (step(schema_version=2), KEY, "schema_version 2 is not understood"),
            (step(county_code="3407"), b"3407", "county_code is not 12 digits"),
            (step(unit_code="3407"), KEY, "unit_code is not 12 digits"),
            (step(period=""), KEY, "period is not a period id"),
            (step(step_id=0), KEY, "step_id must be 1 or more"),
            (step(at="2018-06-03T09:30:00"), KEY, "at has no offset"),
        ],
    )
    def test_each_rule_refuses(self, value: Any, key: bytes, reason: str) -> None:
        assert reason in reason_of(parse_application_step(record(value, key=key)))


DISPUTE_ID = "7c1e5b0c-8f4d-4f0e-9b59-2f7d6a0c1e02"
DISPUTED_EVENT = "6a0c1e01-8f4d-4f0e-9b59-2f7d6a0c5b0c"
DECIDED_AT = "2026-10-09T10:00:00+08:00"


def dispute_step(*, dispute: dict[str, Any] | None = None, **changed: Any) -> dict[str, Any]:
    """A dispute decided by the county (upheld by re-attribution), as its step publishes it."""
    decision = {
        "decision": "uphold_reattribute",
        "new_unit": "340722100202",
        "reason": "经核实属地为邻村",
        "by": COUNTY,
        "at": DECIDED_AT,
    }
    body = {
        "dispute_id": DISPUTE_ID,
        "event_id": DISPUTED_EVENT,
        "unit_code": UNIT,
        "grounds": "not_ours",
        "proposed_unit": "340722100202",
        "duplicate_of": None,
        "statement": "来访人户籍不在本村",
        "filer_scope": UNIT,
        "decider_code": COUNTY,
        "state": "decided",
        "decision": decision,
        "review_request_until": "2026-10-16",
        "review": None,
        "version": 2,
        "filed_at": "2026-10-08T09:00:00+08:00",
        "changed_at": DECIDED_AT,
    } | (dispute or {})
    step = {
        "version": body["version"],
        "action": "decided",
        "at": DECIDED_AT,
        "key_id": "k1",
        "role": "bureau",
        "scope_code": COUNTY,
        "reason": "经核实属地为邻村",
        "detail": {},
    }
    return {"schema_version": 1, "step_id": 7, "dispute": body, "step": step} | changed


class TestDisputeStep:
    KEY = DISPUTED_EVENT.encode()

    def test_a_valid_step_is_its_model_with_the_ruling_in_force(self) -> None:
        parsed = parse_dispute_step(record(dispute_step(), key=self.KEY))
        assert isinstance(parsed, DisputeStep)
        assert not parsed.live
        assert parsed.outcome == Outcome(
            "event_reattributed",
            "340722100202",
            COUNTY,
            datetime.fromisoformat(DECIDED_AT),
        )

    def test_a_review_replaces_the_decision_and_a_reject_upholds_nothing(self) -> None:
        review = {"decision": "reject", "reason": "不属实", "by": "340700000000", "at": DECIDED_AT}
        value = dispute_step(dispute={"state": "reviewed", "review": review, "version": 4})
        value["step"] |= {"version": 4, "action": "reviewed"}
        parsed = parse_dispute_step(record(value, key=self.KEY))
        assert isinstance(parsed, DisputeStep)
        assert parsed.outcome is None and not parsed.live

    def test_a_review_requested_is_live_and_the_decision_still_stands(self) -> None:
        value = dispute_step(dispute={"state": "review_requested", "version": 3})
        value["step"] |= {"version": 3, "action": "review_requested"}
        parsed = parse_dispute_step(record(value, key=self.KEY))
        assert isinstance(parsed, DisputeStep)
        assert parsed.live and parsed.outcome is not None

    def test_a_tombstone_is_refused(self) -> None:
        reason = reason_of(parse_dispute_step(record(None, key=self.KEY)))
        assert reason == "no value (a tombstone); steps are kept forever"

    @pytest.mark.parametrize(
        ("value", "key", "reason"),
        [
            (b"null", KEY, "not a dispute step: "),
            (dispute_step(), UNIT.encode(), "is not the event_id"),
            (dispute_step(schema_version=2), KEY, "schema_version 2 is not understood"),
            (dispute_step(step_id=0), KEY, "step_id must be 1 or more"),
            (dispute_step(dispute={"unit_code": "3407"}), KEY, "unit_code is not 12 digits"),
            (dispute_step(dispute={"state": "lost"}), KEY, "not a dispute step: dispute.state"),
            (
                dispute_step() | {"step": dispute_step()["step"] | {"version": 5}},
                KEY,
                "the step's version is not the dispute's",
            ),
            (
                dispute_step(dispute={"decision": None} | {"state": "filed"})
                | {"step": dispute_step()["step"] | {"at": "2026-10-09T10:00:00"}},
                KEY,
                "the times need an offset",
            ),
        ],
    )
    def test_each_rule_refuses(self, value: Any, key: bytes, reason: str) -> None:
        assert reason in reason_of(parse_dispute_step(record(value, key=key)))

    def test_a_reattribution_without_its_new_unit_is_refused(self) -> None:
        value = dispute_step()
        value["dispute"]["decision"] |= {"new_unit": None}
        reason = reason_of(parse_dispute_step(record(value, key=self.KEY)))
        assert reason == "a re-attribution names no new_unit"
