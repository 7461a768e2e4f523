"""The typed clients, on a service answered by hand: every page of the not-eligible list is
read, with the user's key; fields the console does not know are passed over; problem answers
become the domain errors the error pages speak of. And why a unit is not eligible, in the
words of the eligible list's export."""

import json

import httpx
import pytest

from services.console import labels
from services.console.clients.audit import AuditClient
from services.console.clients.http import ServiceClient
from services.console.clients.reporting import Criteria, ReportingClient
from services.console.sessions import Session
from shared.errors import DependencyUnavailable, InvalidInput, UnitNotFound
from shared.levels import Level

SESSION = Session(
    session_id="s", key_id="k", key="sanwu_reader", role="reader", scope_code=None, csrf_token="t"
)
ZERO = {"skip_level": 0, "non_reception_site": 0, "collective": 0, "incident": 0}


def unit(code: str) -> dict[str, object]:
    return {
        "code": code,
        "name": f"村{code[-3:]}",
        "level": "village",
        "parent_code": "340722103000",
        "parent_name": "钱桥镇",
        "counts": ZERO | {"collective": 1},
        "people": ZERO | {"collective": 7},
        "counting_event_ids": ["e1"],
        "added_later": {"anything": [1, 2]},
    }


def reporting(handler: httpx.MockTransport) -> ReportingClient:
    http = ServiceClient("reporting", base_url="http://reporting", timeout=1.0, transport=handler)
    return ReportingClient(http)


async def test_the_not_eligible_list_is_read_to_its_last_page_with_the_users_key() -> None:
    pages = {
        None: {"items": [unit("340722103201"), unit("340722103202")], "next_cursor": "c1"},
        "c1": {"items": [unit("340722103203")], "next_cursor": None},
    }
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    client = reporting(httpx.MockTransport(answer))
    found = await client.not_eligible(SESSION, root="340722000000", period="2018", level="village")

    assert [u.code for u in found] == ["340722103201", "340722103202", "340722103203"]
    assert found[0].parent_name == "钱桥镇" and found[0].people.collective == 7
    assert [r.url.path for r in seen] == ["/v1/reports/not-eligible"] * 2
    assert [r.url.params.get("cursor") for r in seen] == [None, "c1"]
    for request in seen:
        assert request.headers["Authorization"] == "Bearer sanwu_reader"
        assert request.url.params["root"] == "340722000000"
        assert request.url.params["period"] == "2018"
        assert request.url.params["level"] == "village"
        assert request.url.params["limit"] == "1000"


async def test_a_problem_answer_becomes_the_domain_error_with_its_entries() -> None:
    problems = {
        "/v1/units/340722999999/status": httpx.Response(
            404,
            json={"type": "urn:sanwu:problem:unit-not-found", "detail": "no unit 340722999999"},
        ),
        "/v1/units/340722103201/status": httpx.Response(
            422,
            content=json.dumps(
                {
                    "type": "urn:sanwu:problem:invalid-input",
                    "detail": "bad period",
                    "errors": [{"field": "period", "type": "string_too_long", "message": "x"}],
                }
            ),
        ),
    }
    client = reporting(httpx.MockTransport(lambda request: problems[request.url.path]))

    with pytest.raises(UnitNotFound, match="no unit 340722999999"):
        await client.status(SESSION, code="340722999999", period="2018")
    with pytest.raises(InvalidInput) as refused:
        await client.status(SESSION, code="340722103201", period="2018")
    assert refused.value.errors is not None
    assert refused.value.errors[0]["field"] == "period"
    assert refused.value.errors[0]["type"] == "string_too_long"


async def test_the_audit_log_before_its_first_checkpoint_is_not_the_audit_service_down() -> None:
    def problem(slug: str) -> httpx.Response:
        return httpx.Response(503, json={"type": f"urn:sanwu:problem:{slug}", "detail": slug})

    answers = {"first": problem("no-checkpoint"), "down": problem("dependency-unavailable")}
    ask = httpx.MockTransport(lambda request: answers[request.url.host])

    def audit(host: str) -> AuditClient:
        return AuditClient(
            ServiceClient("audit", base_url=f"http://{host}", timeout=1.0, transport=ask),
            deadline=1.0,
        )

    assert await audit("first").checkpoint(SESSION) is None
    with pytest.raises(DependencyUnavailable, match="审计服务"):
        await audit("down").checkpoint(SESSION)


def counts(**given: int) -> Criteria:
    return Criteria.model_validate(ZERO | given)


@pytest.mark.parametrize(
    ("batches", "people", "reason"),
    [
        (counts(collective=1), counts(collective=7), "集体上访1批7人次"),
        (
            counts(skip_level=2, collective=1, incident=1),
            counts(skip_level=5, collective=6),
            "越级上访2批5人次；集体上访1批6人次；极端事件或负面舆情1起",
        ),
        (counts(non_reception_site=1), counts(non_reception_site=3), "非接待场所1批3人次"),
        (counts(), counts(), "有计入事件"),
    ],
)
def test_why_a_unit_is_not_eligible_is_said_in_the_exports_words(
    batches: Criteria, people: Criteria, reason: str
) -> None:
    assert labels.not_eligible_reason(batches, people) == reason


def test_a_level_is_named_in_chinese_whether_given_as_a_level_or_its_value() -> None:
    assert labels.level_name("county") == "县（区）"
    assert labels.level_name(Level.village) == "村（居）"
    assert labels.level_name("nation") == "nation"
