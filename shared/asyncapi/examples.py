"""One example of each message, as its producer would publish it after a desk of 枞阳县 posted
the visit of `shared.events.EXAMPLES`: built through the message models, so an example that
no longer parses fails to build (tests/test_asyncapi.py also holds each to its parser)."""

from typing import Any

from pydantic import BaseModel

from shared.application_steps import ApplicationStep
from shared.case_steps import CaseStep
from shared.config import LOCAL_ONLY_SECRET
from shared.dispute_steps import DisputeStep
from shared.early_warning import EarlyWarning
from shared.events import EXAMPLES, FREE_TEXT_FIELDS, EventRecord, EventType
from shared.indicators import UnitIndicators
from shared.keyed_hash import KeyedHash
from shared.status import UnitStatus

COUNTY = "340722000000"  # 枞阳县
TOWNSHIP = "340722100000"  # 枞阳镇
VILLAGE = "340722100201"
SIBLING_VILLAGE = "340722101201"  # of 横埠镇
KEY_ID = "5f2c9a41b7d3"
BUREAU_KEY_ID = "a81d03c6e94f"
CORRELATION_ID = "4c1f7e0a9b2d4e6f8a3c5b7d9e1f2a4c"
VISIT: dict[str, Any] = EXAMPLES[EventType.petition_visit]
ACCEPTED_AT = "2018-06-03T09:31:02.417+08:00"
CHANGED_AT = "2018-06-03T09:31:02.951+08:00"


def payload(model: type[BaseModel], fields: dict[str, Any]) -> dict[str, Any]:
    """The fields as the model publishes them (so the example is what it validates)."""
    published: dict[str, Any] = model.model_validate(fields).model_dump(mode="json")
    return published


def event_record() -> dict[str, Any]:
    event = {k: v for k, v in VISIT.items() if k not in FREE_TEXT_FIELDS}
    event["petitioner_ref"] = KeyedHash(LOCAL_ONLY_SECRET)(VISIT["petitioner_ref"])
    return payload(EventRecord, {"event": event, "accepted_at": ACCEPTED_AT, "key_id": KEY_ID})


def unit_status() -> dict[str, Any]:
    # Six people at the city's reception: a collective visit for the village (5 or more).
    return payload(
        UnitStatus,
        {
            "unit_code": VILLAGE,
            "period": "2018",
            "three_no": False,
            "counts": {"collective": 1},
            "people": {"collective": VISIT["headcount"]},
            "counting_event_ids": [VISIT["event_id"]],
            "changed_at": CHANGED_AT,
            "version": 1,
        },
    )


def unit_indicators() -> dict[str, Any]:
    meeting = EXAMPLES[EventType.screening_meeting]
    return payload(
        UnitIndicators,
        {
            "unit_code": meeting["unit_code"],
            "period": "2018",
            "meetings_held": ["2018-06-04"],  # the Monday of the meeting's week
            "ratings": {
                "petitioner": {},
                "third_party": {"basically_satisfied": 1},
                "representative": {},
            },
            "changed_at": CHANGED_AT,
            "version": 3,
        },
    )


def early_warning() -> dict[str, Any]:
    return payload(
        EarlyWarning,
        {
            "warning_id": "9d2b6c1e-5f3a-5e8b-a4c7-0e1f2a3b4c5d",
            "kind": "near_threshold",
            "unit_code": TOWNSHIP,
            "raised_at": CHANGED_AT,
            "event_ids": ["c3a1e5f7-9b2d-4f6a-8c0e-1d3f5a7b9c2e"],  # four people at the city's
            "detail": {
                "level": "township",
                "headcount": 4,
                "destination": "city",
                "counted_from": 5,
            },
            "version": 1,
        },
    )


def application_step() -> dict[str, Any]:
    return payload(
        ApplicationStep,
        {
            "step_id": 1,
            "application_id": "6a0e4f2b-8c1d-4e3f-9a5b-7c6d8e9f0a1b",
            "county_code": COUNTY,
            "period": "2018",
            "unit_code": None,
            "action": "created",
            "key_id": BUREAU_KEY_ID,
            "role": "bureau",
            "scope_code": COUNTY,
            "reason": None,
            "detail": {"units": [VILLAGE]},
            "at": "2018-12-03T10:00:00+08:00",
        },
    )


def dispute_step() -> dict[str, Any]:
    filed_at = "2018-06-05T15:20:00+08:00"
    return payload(
        DisputeStep,
        {
            "step_id": 1,
            "dispute": {
                "dispute_id": "1e7d3b5a-2c4f-4a6e-8b0d-9f1e3a5c7b9d",
                "event_id": VISIT["event_id"],
                "unit_code": VILLAGE,
                "grounds": "not_ours",
                "proposed_unit": SIBLING_VILLAGE,
                "duplicate_of": None,
                "statement": "来访人户籍不在本村",
                "filer_scope": VILLAGE,
                "decider_code": COUNTY,
                "state": "filed",
                "decision": None,
                "review_request_until": None,
                "review": None,
                "version": 1,
                "filed_at": filed_at,
                "changed_at": filed_at,
            },
            "step": {
                "version": 1,
                "action": "filed",
                "at": filed_at,
                "key_id": KEY_ID,
                "role": "desk",
                "scope_code": VILLAGE,
                "reason": "来访人户籍不在本村",
                "detail": {},
            },
        },
    )


def case_step() -> dict[str, Any]:
    registered_at = "2018-06-03T10:05:00+08:00"
    return payload(
        CaseStep,
        {
            "step_id": 1,
            "case": {
                "case_id": "2b4d6f8a-0c1e-4a3b-8d5f-7a9b1c3d5e7f",
                "unit_code": VILLAGE,
                "first_receiver": TOWNSHIP,
                "owner_unit": TOWNSHIP,
                "owner_body": None,
                "received_at": VISIT["occurred_at"],
                "channel": "visit",
                "category": "土地征收",
                "petitioner_ref": event_record()["event"]["petitioner_ref"],
                "headcount": 1,
                "event_ids": [],
                "state": "registered",
                "repeat_of": None,
                "reviews": 0,
                "rating": None,
                "version": 1,
                "registered_at": registered_at,
                "changed_at": registered_at,
            },
            "step": {
                "version": 1,
                "action": "registered",
                "at": VISIT["occurred_at"],
                "recorded_at": registered_at,
                "key_id": KEY_ID,
                "role": "desk",
                "scope_code": TOWNSHIP,
                "body": None,
                "reason": "登记",
                "detail": {},
            },
        },
    )
