"""Each message a subscription may hear of becomes one thin payload with the feeds' ids, read
through the message's one parser; what the parser refuses is refused here too."""

import uuid
from datetime import UTC, datetime

import orjson

from services.webhooks.changes import READERS, Change
from services.webhooks.rules import Kind
from shared.application_steps import ApplicationStep, StepAction
from shared.case_steps import Action as CaseAction
from shared.case_steps import Case, CaseState, CaseStep, Channel
from shared.case_steps import Step as CaseStepBody
from shared.consumer import Rejected
from shared.dispute_steps import Action, Dispute, DisputeStep, Grounds, State, Step
from tests.support.messages import record_of

AT = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
VILLAGE = "340722100201"
COUNTY = "340722000000"


def change(kind: Kind, key: bytes, value: bytes) -> Change:
    _, change_of = READERS[kind]
    made = change_of(record_of(key, value))
    assert isinstance(made, Change), made
    return made


def test_an_application_step_is_named_by_its_step_id_at_its_unit() -> None:
    step = ApplicationStep(
        step_id=41,
        application_id=uuid.uuid4(),
        county_code=COUNTY,
        period="2018",
        unit_code=VILLAGE,
        action=StepAction.submitted,
        key_id="k",
        role="bureau",
        scope_code=COUNTY,
        reason=None,
        detail={},
        at=AT,
    )
    made = change(Kind.application_steps, step.key, step.model_dump_json().encode())
    assert (made.message_id, made.unit_code) == ("application_step_41", VILLAGE)
    payload = orjson.loads(made.body)
    assert payload["type"] == "application.step"
    assert payload["data"]["step_id"] == 41 and payload["data"]["action"] == "submitted"


def test_a_dispute_step_carries_the_dispute_and_event_ids() -> None:
    dispute = Dispute(
        dispute_id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        unit_code=VILLAGE,
        grounds=Grounds.facts,
        proposed_unit=None,
        duplicate_of=None,
        statement="s",
        filer_scope=COUNTY,
        decider_code=COUNTY,
        state=State.filed,
        decision=None,
        review_request_until=None,
        review=None,
        version=1,
        filed_at=AT,
        changed_at=AT,
    )
    message = DisputeStep(
        step_id=7,
        dispute=dispute,
        step=Step(
            version=1,
            action=Action.filed,
            at=AT,
            key_id="k",
            role="desk",
            scope_code=COUNTY,
            reason="r",
            detail={},
        ),
    )
    made = change(Kind.dispute_steps, message.key, message.model_dump_json().encode())
    data = orjson.loads(made.body)["data"]
    assert made.message_id == "dispute_step_7"
    assert data["dispute_id"] == str(dispute.dispute_id)
    assert data["event_id"] == str(dispute.event_id)
    assert data["state"] == "filed"


def test_a_case_step_is_named_by_the_case_and_its_version() -> None:
    case_id = uuid.uuid4()
    case = Case(
        case_id=case_id,
        unit_code=VILLAGE,
        first_receiver=COUNTY,
        owner_unit=COUNTY,
        owner_body=None,
        received_at=AT,
        channel=Channel.visit,
        category="c",
        petitioner_ref="h",
        headcount=1,
        event_ids=[],
        state=CaseState.registered,
        repeat_of=None,
        reviews=0,
        rating=None,
        version=1,
        registered_at=AT,
        changed_at=AT,
    )
    message = CaseStep(
        step_id=12,
        case=case,
        step=CaseStepBody(
            version=1,
            action=CaseAction.registered,
            at=AT,
            recorded_at=AT,
            key_id="k",
            role="desk",
            scope_code=COUNTY,
            body=None,
            reason="r",
            detail={},
        ),
    )
    made = change(Kind.case_steps, message.key, message.model_dump_json().encode())
    assert made.message_id == f"case_step_{case_id}_1"
    assert made.unit_code == VILLAGE
    data = orjson.loads(made.body)["data"]
    assert data["step_id"] == 12 and data["action"] == "registered"
    assert "petitioner_ref" not in data and "category" not in data


def test_a_message_its_parser_refuses_is_refused() -> None:
    _, change_of = READERS[Kind.status_changes]
    assert isinstance(change_of(record_of(b"x", b"{}")), Rejected)
    assert isinstance(change_of(record_of(b"x", None)), Rejected)
