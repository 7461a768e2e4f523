"""The cases client, on a service answered by hand: a filing is posted as the form built it
with the user's key; every change carries the page's version as If-Match, and a version that
is no number is refused before anything is sent; the waiting disputes are both states', oldest
first; the service's refusals become the domain errors, and a late filing names its last day in
Chinese. And the last day to dispute an event as its page says it, from evaluation's effect."""

import json
from datetime import date
from typing import Any

import httpx
import pytest

from services.console import forms, labels
from services.console.clients.cases import CasesClient
from services.console.clients.evaluation import Effect
from services.console.clients.http import ServiceClient
from services.console.sessions import Session
from services.console.views import window_of
from shared.errors import InvalidInput, PreconditionFailed, StateConflict

SESSION = Session(
    session_id="s",
    key_id="k",
    key="sanwu_desk",
    role="desk",
    scope_code="340722000000",
    csrf_token="t",
)
DISPUTE_ID = "5a0c1c1e-2f55-4a5e-9a53-0d1f7a7d3b10"
EVENT_ID = "0b6f0c5e-6a53-4b52-9d5e-7a3c2d0b1f11"


def dispute(**fields: Any) -> dict[str, Any]:
    return {
        "dispute_id": DISPUTE_ID,
        "event_id": EVENT_ID,
        "unit_code": "340722112201",
        "grounds": "not_ours",
        "proposed_unit": "340722112202",
        "duplicate_of": None,
        "statement": "来访人户籍不在本村",
        "state": "filed",
        "decider_code": "340722000000",
        "decision": None,
        "review": None,
        "dispute_until": "2026-12-14",
        "review_request_until": None,
        "version": 1,
        "filed_at": "2026-12-07T02:00:00Z",
        "changed_at": "2026-12-07T02:00:00Z",
        "steps": [
            {
                "version": 1,
                "action": "filed",
                "at": "2026-12-07T02:00:00Z",
                "key_id": "k",
                "role": "desk",
                "scope_code": "340722000000",
                "reason": "来访人户籍不在本村",
                "detail": {},
            }
        ],
        "added_later": {"anything": 1},
    } | fields


def cases(answer: Any) -> CasesClient:
    transport = httpx.MockTransport(answer)
    return CasesClient(
        ServiceClient("cases", base_url="http://cases", timeout=1.0, transport=transport)
    )


def problem(status: int, slug: str, detail: str, errors: list[dict[str, Any]] | None = None):
    body: dict[str, Any] = {"type": f"urn:sanwu:problem:{slug}", "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return httpx.Response(
        status, content=json.dumps(body), headers={"content-type": "application/problem+json"}
    )


async def test_a_filing_is_posted_as_built_with_the_users_key() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=dispute())

    form = {
        "dispute_id": DISPUTE_ID,
        "grounds": "not_ours",
        "proposed_unit": " 340722112202 ",
        "duplicate_of": "left over from another choice",
        "statement": " 来访人户籍不在本村 ",
    }
    filed = await cases(answer).file(SESSION, forms.filing_of(form, event_id=EVENT_ID))

    assert str(filed.dispute_id) == DISPUTE_ID and filed.filer_scope == "340722000000"
    assert filed.dispute_until == date(2026, 12, 14)
    [request] = seen
    assert (request.method, request.url.path) == ("POST", "/v1/disputes")
    assert request.headers["Authorization"] == "Bearer sanwu_desk"
    assert json.loads(request.content) == {
        "dispute_id": DISPUTE_ID,
        "event_id": EVENT_ID,
        "grounds": "not_ours",
        "proposed_unit": "340722112202",
        "statement": "来访人户籍不在本村",
    }


async def test_a_change_carries_the_pages_version_and_a_bad_one_is_never_sent() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=dispute(state="decided", version=2))

    client = cases(answer)
    ruling = forms.ruling_of(
        {"decision": "uphold_reattribute", "new_unit": "340722112202", "reason": " 核实 "}
    )
    decided = await client.act(
        SESSION, dispute_id=DISPUTE_ID, action="decide", version="1", body=ruling
    )

    assert decided.state == "decided"
    [request] = seen
    assert request.url.path == f"/v1/disputes/{DISPUTE_ID}/decide"
    assert request.headers["If-Match"] == '"1"'
    assert json.loads(request.content) == {
        "decision": "uphold_reattribute",
        "new_unit": "340722112202",
        "reason": "核实",
    }
    for version in ("", "١", "1 OR 1=1"):
        with pytest.raises(PreconditionFailed):
            await client.act(
                SESSION, dispute_id=DISPUTE_ID, action="withdraw", version=version, body={}
            )
    assert len(seen) == 1


async def test_the_waiting_disputes_are_both_states_oldest_first() -> None:
    answers = {
        "filed": [dispute(changed_at="2026-12-07T03:00:00Z")],
        "review_requested": [
            dispute(
                dispute_id="7d0c1c1e-2f55-4a5e-9a53-0d1f7a7d3b10",
                state="review_requested",
                changed_at="2026-12-07T01:00:00Z",
            )
        ],
    }

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.params["root"] == "340722000000"
        return httpx.Response(200, json={"disputes": answers[request.url.params["state"]]})

    found = await cases(answer).waiting(SESSION, root="340722000000")

    assert [d.state for d in found] == ["review_requested", "filed"]


async def test_refusals_become_domain_errors_and_a_late_filing_names_its_last_day() -> None:
    late = [{"field": "event_id", "message": "late", "dispute_until": "2026-11-13"}]
    answers = {
        "late": problem(422, "invalid-input", "too late", late),
        "live": problem(409, "state-conflict", "the event has a live dispute already"),
        "stale": problem(412, "precondition-failed", "version 1 is stale"),
    }

    def answer(request: httpx.Request) -> httpx.Response:
        return answers[json.loads(request.content)["statement"]]

    client = cases(answer)
    filing = {"dispute_id": DISPUTE_ID, "event_id": EVENT_ID, "grounds": "other"}
    with pytest.raises(InvalidInput) as refused:
        await client.file(SESSION, filing | {"statement": "late"})
    assert forms.dispute_errors(refused.value.errors) == {
        "": "已过异议期，不能再提出异议：最后一天是 2026-11-13"
    }
    with pytest.raises(StateConflict):
        await client.file(SESSION, filing | {"statement": "live"})
    with pytest.raises(PreconditionFailed):
        await client.file(SESSION, filing | {"statement": "stale"})


def test_the_refused_fields_of_a_dispute_are_said_in_chinese() -> None:
    errors = [
        {"field": "proposed_unit", "message": "required for these grounds"},
        {"field": "new_unit"},
        {"field": "statement", "type": "string_too_short", "message": "too short"},
        {"field": "duplicate_of", "type": "uuid_parsing", "message": "bad"},
        {"field": "review_request_until", "last_day": "2026-12-14"},
    ]
    assert forms.dispute_errors(errors) == {
        "proposed_unit": "以这一理由提出异议时必须填写",
        "new_unit": "改属地时必须填写新属地单位代码",
        "statement": "此项必填",
        "duplicate_of": "请填写正确的事件编号",
        "": "已过申请复核的期限：最后一天是 2026-12-14",
    }


def effect(**fields: Any) -> Effect:
    return Effect.model_validate({"state": "applied", "counts_against": []} | fields)


def test_the_last_day_to_dispute_an_event_as_its_page_says_it() -> None:
    today = date(2026, 12, 9)
    cases_of_day = {
        date(2026, 12, 14): "异议截止 2026-12-14（剩 5 天）",
        date(2026, 12, 9): "异议截止 2026-12-09（今天截止）",
        date(2026, 12, 8): "已过异议期（2026-12-08 截止）",
    }
    for until, said in cases_of_day.items():
        window = window_of(effect(dispute_until=until.isoformat()), today=today)
        assert window is not None
        assert labels.dispute_window(window.until, window.days_left) == said
        assert window.may_file is (until >= today)

    unknown = window_of(effect(dispute_until_reason="year 2027 not loaded"), today=today)
    assert unknown is not None and not unknown.may_file
    assert labels.dispute_window(unknown.until, unknown.days_left).startswith(
        "异议截止日暂不能确定"
    )
    assert window_of(effect(), today=today) is None  # a work record, or an older evaluation

    disputed = window_of(
        effect(
            dispute_until="2026-12-14",
            disputes=[
                {"dispute_id": DISPUTE_ID, "state": "withdrawn"},
                {"dispute_id": "7d0c1c1e-2f55-4a5e-9a53-0d1f7a7d3b10", "state": "filed"},
            ],
        ),
        today=today,
    )
    assert disputed is not None and disputed.live is not None and not disputed.may_file
    assert str(disputed.live.dispute_id) == "7d0c1c1e-2f55-4a5e-9a53-0d1f7a7d3b10"
