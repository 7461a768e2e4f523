"""Cases through the API on the real stack: registered at a desk, routed to a handling body,
accepted, extended, replied, rated, reviewed twice and closed, each clock met or late as the
dates say; repeats; who may see and act. Every refusal leaves the case as it was."""

import uuid
from datetime import date, datetime, time
from typing import Any

import httpx
import orjson

from shared.campaign import SHANGHAI
from shared.case_steps import CaseStep
from shared.config import Settings
from shared.consumer import Rejected
from shared.messages import parse_case_step
from tests.support.app import bearer
from tests.support.cases import COUNTY, SIBLING_VILLAGE, TOWNSHIP, VILLAGE, RunningCases
from tests.support.stack import read_topic
from tests.support.waiting import poll
from tests.test_messages import record


def on(month: int, day: int, hour: int = 10, year: int = 2026) -> str:
    return datetime.combine(date(year, month, day), time(hour), tzinfo=SHANGHAI).isoformat()


def registration(**fields: Any) -> dict[str, Any]:
    return {
        "case_id": str(uuid.uuid4()),
        "unit_code": VILLAGE,
        "received_at": on(6, 1),
        "channel": "visit",
        "category": "土地征收",
        "petitioner_ref": f"3407221980{uuid.uuid4().int % 10**8:08d}",
        "headcount": 1,
        "summary": "征地补偿款未足额发放",
    } | fields


class Desk:
    """The API as the test's keys use it."""

    def __init__(self, cases: RunningCases, keys: dict[str, str]) -> None:
        self.client = cases.client
        self.keys = keys

    async def register(self, key: str = "township_desk", **fields: Any) -> httpx.Response:
        return await self.client.post(
            "/v1/cases", json=registration(**fields), headers=bearer(self.keys[key])
        )

    async def step(self, key: str, case: dict[str, Any], path: str, **body: Any) -> httpx.Response:
        return await self.client.post(
            f"/v1/cases/{case['case_id']}/{path}",
            json=body,
            headers=bearer(self.keys[key]) | {"If-Match": f'"{case["version"]}"'},
        )

    async def took(self, key: str, case: dict[str, Any], path: str, **body: Any) -> dict[str, Any]:
        response = await self.step(key, case, path, **body)
        assert response.status_code == 200, response.text
        taken: dict[str, Any] = response.json()
        return taken

    async def get(self, key: str, case_id: str) -> httpx.Response:
        return await self.client.get(f"/v1/cases/{case_id}", headers=bearer(self.keys[key]))


def clock(case: dict[str, Any], name: str, nth: int = -1) -> dict[str, Any]:
    found = [c for c in case["clocks"] if c["name"] == name]
    assert found, f"no {name} clock in {case['clocks']}"
    return found[nth]


async def registered(desk: Desk, **fields: Any) -> dict[str, Any]:
    response = await desk.register(**fields)
    assert response.status_code == 201, response.text
    case: dict[str, Any] = response.json()
    return case


async def test_one_case_from_registration_through_both_reviews_to_closing(
    disputes_app: RunningCases, handler_keys: dict[str, str]
) -> None:
    desk = Desk(disputes_app, handler_keys)
    case = await registered(desk, received_at=on(6, 1))
    assert case["state"] == "registered" and case["owner"] == {"unit_code": TOWNSHIP, "body": None}
    assert clock(case, "route")["due"] == "2026-06-16"

    case = await desk.took(
        "township_desk", case, "route", to={"unit_code": COUNTY}, at=on(6, 3)
    )  # forwarded to the county, which routes it in turn
    case = await desk.took(
        "county_desk", case, "route", to={"unit_code": COUNTY, "body": "民政"}, at=on(6, 20)
    )
    # The forward met the first route clock and started the county's: due 06-18, routed 06-20.
    assert [c["state"] for c in case["clocks"] if c["name"] == "route"] == ["met", "late"]
    assert clock(case, "accept")["due"] == "2026-07-06"  # 07-05 is a Sunday
    case = await desk.took(
        "county_civil", case, "accept", reason="属于本部门职责", notified_at=on(7, 7), at=on(7, 3)
    )
    assert clock(case, "accept")["state"] == "late"  # told the petitioner a day late
    assert clock(case, "reply")["due"] == "2026-09-01"
    case = await desk.took(
        "county_civil", case, "extend", days=30, reason="需补充调查", at=on(8, 20)
    )
    assert clock(case, "reply")["due"] == "2026-10-08"  # 10-01 + 30 days → 10-01, rolled over
    case = await desk.took(
        "county_civil",
        case,
        "steps",
        kind="mediation",
        mediation="people",
        note="人民调解一次",
        at=on(9, 1),
    )
    case = await desk.took(
        "county_civil", case, "reply", outcome="explain", text="依政策解释", at=on(9, 30)
    )
    assert clock(case, "reply")["state"] == "met"
    case = await desk.took("township_desk", case, "rate", rating="dissatisfied", at=on(10, 9))
    assert clock(case, "rating")["state"] == "met" and case["rating"] == "dissatisfied"
    case = await desk.took("township_desk", case, "review-request", at=on(10, 20))
    assert case["steps"][-1]["detail"] == {"level": "review", "by": "340700000000"}
    case = await desk.took(
        "city_bureau", case, "review", outcome="support", text="维持原意见", at=on(11, 25)
    )
    assert clock(case, "review")["state"] == "late"  # 10-20 + 30 = 11-19
    case = await desk.took("township_desk", case, "review-request", at=on(11, 30))
    assert case["steps"][-1]["detail"]["by"] == "340000000000"
    case = await desk.took(
        "province_bureau", case, "review", outcome="support", text="复核维持", at=on(12, 3)
    )
    assert case["reviews"] == 2
    case = await desk.took("township_desk", case, "close", reason="复核终结", at=on(12, 4))

    assert case["state"] == "closed"
    assert [s["action"] for s in case["steps"]] == [
        "registered", "forwarded", "routed", "accepted", "extended", "mediated", "replied",
        "rated", "review_requested", "reviewed", "review_requested", "reviewed", "closed",
    ]  # fmt: skip
    assert all(c["state"] in ("met", "late") for c in case["clocks"] if c["name"] != "rating")


async def test_a_body_objects_within_five_working_days_and_not_on_the_sixth(
    disputes_app: RunningCases, handler_keys: dict[str, str]
) -> None:
    desk = Desk(disputes_app, handler_keys)
    sent = [
        await desk.took(
            "county_desk",
            await registered(desk, key="county_desk", received_at=on(9, 28)),
            "route",
            to={"unit_code": COUNTY, "body": "司法"},
            at=on(9, 29),
        )
        for _ in range(2)
    ]
    assert clock(sent[0], "object")["due"] == "2026-10-12"

    on_fifth = await desk.step(
        "county_justice", sent[0], "object", reason="不属本部门", at=on(10, 12)
    )
    on_sixth = await desk.step(
        "county_justice", sent[1], "object", reason="不属本部门", at=on(10, 13)
    )

    assert on_fifth.status_code == 200, on_fifth.text
    returned = on_fifth.json()
    assert returned["state"] == "registered"
    assert returned["owner"] == {"unit_code": COUNTY, "body": None}
    assert on_sixth.status_code == 422 and "2026-10-12" in on_sixth.text
    unchanged = (await desk.get("county_desk", sent[1]["case_id"])).json()
    assert unchanged["version"] == sent[1]["version"] and unchanged["state"] == "routed"


async def test_a_matter_repeats_while_open_is_refused_once_closed_and_is_new_in_another_category(
    disputes_app: RunningCases, handler_keys: dict[str, str]
) -> None:
    desk = Desk(disputes_app, handler_keys)
    person = f"34072219750101{uuid.uuid4().int % 10**4:04d}"
    first = await registered(desk, petitioner_ref=person, category="劳动争议")

    repeat = await registered(
        desk, petitioner_ref=person, category="劳动争议", received_at=on(6, 5)
    )
    other = await registered(desk, petitioner_ref=person, category="环境污染", received_at=on(6, 5))

    assert repeat["state"] == "repeat" and repeat["repeat_of"] == first["case_id"]
    assert repeat["clocks"] == []
    assert other["state"] == "registered" and other["repeat_of"] is None
    case = await desk.took(
        "township_desk", first, "route", to={"unit_code": TOWNSHIP, "body": "民政"}, at=on(6, 2)
    )
    case = await desk.took(
        "township_civil",
        case,
        "decline",
        reason="属诉讼事项",
        channel="人民法院",
        notified_at=on(6, 3),
        at=on(6, 3),
    )
    await desk.took("township_desk", case, "close", at=on(6, 4))
    refused = await registered(
        desk, petitioner_ref=person, category="劳动争议", received_at=on(6, 9)
    )
    assert refused["state"] == "refused" and refused["repeat_of"] == first["case_id"]


async def test_the_same_case_id_again_is_a_duplicate_and_with_other_content_a_conflict(
    disputes_app: RunningCases, handler_keys: dict[str, str]
) -> None:
    desk = Desk(disputes_app, handler_keys)
    body = registration()
    first = await disputes_app.client.post(
        "/v1/cases", json=body, headers=bearer(handler_keys["township_desk"])
    )
    again = await disputes_app.client.post(
        "/v1/cases", json=body, headers=bearer(handler_keys["township_desk"])
    )
    changed = await disputes_app.client.post(
        "/v1/cases", json=body | {"headcount": 3}, headers=bearer(handler_keys["township_desk"])
    )

    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["version"] == 1
    assert changed.status_code == 409
    assert (await desk.get("township_desk", body["case_id"])).json()["headcount"] == 1


async def test_another_townships_desk_neither_sees_nor_acts_and_a_body_acts_only_on_its_cases(
    disputes_app: RunningCases, handler_keys: dict[str, str]
) -> None:
    desk = Desk(disputes_app, handler_keys)
    case = await registered(desk)

    assert (await desk.get("sibling_desk", case["case_id"])).status_code == 404
    routed_by_sibling = await desk.step(
        "sibling_desk", case, "route", to={"unit_code": TOWNSHIP, "body": "民政"}
    )
    assert routed_by_sibling.status_code == 404
    case = await desk.took(
        "township_desk", case, "route", to={"unit_code": TOWNSHIP, "body": "民政"}
    )
    by_other_body = await desk.step(
        "county_civil",
        case,
        "accept",
        reason="受理",
        notified_at=datetime.now(SHANGHAI).isoformat(),
    )
    assert by_other_body.status_code == 404
    assert (await desk.get("township_civil", case["case_id"])).status_code == 200
    by_other_unit = await desk.register(key="township_desk", unit_code=SIBLING_VILLAGE)
    assert by_other_unit.status_code == 403


async def test_a_reader_sees_the_case_but_not_the_petitioners_words(
    disputes_app: RunningCases, handler_keys: dict[str, str]
) -> None:
    desk = Desk(disputes_app, handler_keys)
    case = await registered(desk)

    by_desk = (await desk.get("township_desk", case["case_id"])).json()
    by_reader = (await desk.get("township_reader", case["case_id"])).json()

    assert by_desk["summary"] == "征地补偿款未足额发放"
    assert by_reader["summary"] is None and by_reader["state"] == "registered"
    refused = await desk.step(
        "township_reader", case, "route", to={"unit_code": TOWNSHIP, "body": "民政"}
    )
    assert refused.status_code == 403


async def test_a_stale_version_is_refused_and_changes_nothing(
    disputes_app: RunningCases, handler_keys: dict[str, str]
) -> None:
    desk = Desk(disputes_app, handler_keys)
    case = await registered(desk)

    stale = await desk.step(
        "township_desk", case | {"version": 7}, "route", to={"unit_code": TOWNSHIP, "body": "民政"}
    )
    unknown_body = await desk.step(
        "township_desk", case, "route", to={"unit_code": TOWNSHIP, "body": "外交"}
    )
    future = await desk.step(
        "township_desk",
        case,
        "route",
        to={"unit_code": TOWNSHIP, "body": "民政"},
        at=on(1, 1, year=2031),
    )

    assert (stale.status_code, unknown_body.status_code, future.status_code) == (412, 422, 422)
    assert (await desk.get("township_desk", case["case_id"])).json()["version"] == 1


async def test_the_feed_gives_every_step_once_in_order_and_the_topic_carries_them(
    disputes_app: RunningCases, handler_keys: dict[str, str], settings: Settings
) -> None:
    desk = Desk(disputes_app, handler_keys)
    reader = bearer(handler_keys["county_reader"])
    start = await disputes_app.client.get("/v1/feed/cases", params={"limit": 1000}, headers=reader)
    while start.json()["items"]:  # to the end of what earlier tests made
        start = await disputes_app.client.get(
            "/v1/feed/cases",
            params={"since": start.json()["next_cursor"], "limit": 1000},
            headers=reader,
        )
    case = await registered(desk)
    case = await desk.took(
        "township_desk", case, "route", to={"unit_code": TOWNSHIP, "body": "民政"}
    )

    page = await disputes_app.client.get(
        "/v1/feed/cases", params={"since": start.json()["next_cursor"]}, headers=reader
    )
    again = await disputes_app.client.get(
        "/v1/feed/cases", params={"since": page.json()["next_cursor"]}, headers=reader
    )

    steps = [(i["case_id"], i["action"]) for i in page.json()["items"]]
    assert steps == [(case["case_id"], "registered"), (case["case_id"], "routed")]
    assert again.json()["items"] == []
    assert "summary" not in str(page.json())  # the petitioner's words stay in the service

    async def on_the_topic() -> list[dict[str, Any]] | None:
        records = await read_topic(settings, settings.cases_topic, timeout=10)
        found = [orjson.loads(v) for _, k, v, _ in records if k == case["case_id"].encode()]
        return found if len(found) == 2 else None

    published = await poll(on_the_topic, timeout=30, message="both steps on the cases topic")
    assert [m["step"]["action"] for m in published] == ["registered", "routed"]
    parsed = [parse_case_step(record(m, key=case["case_id"].encode())) for m in published]
    assert all(isinstance(p, CaseStep) for p in parsed), parsed
    assert isinstance(parse_case_step(record(published[0], key=b"another")), Rejected)
    assert published[1]["case"]["owner_body"] == "民政"
    assert "征地" not in str(published)


async def test_a_batch_registers_each_case_as_alone_and_a_refused_one_stops_none(
    disputes_app: RunningCases, handler_keys: dict[str, str]
) -> None:
    desk = Desk(disputes_app, handler_keys)
    known = registration()
    await disputes_app.client.post(
        "/v1/cases", json=known, headers=bearer(handler_keys["township_desk"])
    )
    person = uuid.uuid4().hex
    batch = [
        registration(petitioner_ref=person),
        registration(petitioner_ref=person, received_at=on(6, 2)),  # the same matter
        known,
        registration(unit_code=SIBLING_VILLAGE),  # another township's
    ]

    response = await disputes_app.client.post(
        "/v1/cases/batch", json={"cases": batch}, headers=bearer(handler_keys["township_desk"])
    )

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["registered", "repeat", "duplicate", "rejected"]
    assert results[3]["error"]["status"] == 403
    assert (await desk.get("township_desk", batch[1]["case_id"])).json()["repeat_of"] == batch[0][
        "case_id"
    ]
    assert (await desk.get("county_desk", batch[3]["case_id"])).status_code == 404


async def test_a_case_says_which_steps_the_asking_key_may_take_now(
    disputes_app: RunningCases, handler_keys: dict[str, str]
) -> None:
    desk = Desk(disputes_app, handler_keys)
    case = await registered(desk)

    assert case["actions"] == ["route", "agent"]
    assert (await desk.get("township_reader", case["case_id"])).json()["actions"] == []
    case = await desk.took(
        "township_desk", case, "route", to={"unit_code": TOWNSHIP, "body": "民政"}
    )
    by_body = (await desk.get("township_civil", case["case_id"])).json()
    assert by_body["actions"] == ["object", "accept", "decline", "agent"]
    assert (await desk.get("township_desk", case["case_id"])).json()["actions"] == ["agent"]
