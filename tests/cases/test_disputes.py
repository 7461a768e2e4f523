"""Disputes driven through intake: an event accepted and published, read by the cases service,
disputed by the unit's side, decided by the bureau above, reviewed by the next one up. Every
refusal leaves nothing behind."""

import uuid
from datetime import date, timedelta
from typing import Any

import httpx

from shared.campaign import DISPUTE_WINDOW, SHANGHAI, system_now
from shared.config import Settings
from tests.support.app import bearer
from tests.support.cases import (
    CITY,
    COUNTY,
    SIBLING_VILLAGE,
    VILLAGE,
    MovableClock,
    RunningCases,
    dispute,
    file_when_known,
    posted,
)
from tests.support.events import meeting, visit, voided
from tests.support.stack import read_topic
from tests.support.waiting import poll


async def filed_on_new_visit(
    cases: RunningCases, intake: httpx.AsyncClient, keys: dict[str, str], **fields: Any
) -> dict[str, Any]:
    event_id = await posted(intake, keys["township_desk"], visit(VILLAGE))
    response = await file_when_known(cases, keys["township_desk"], dispute(event_id, **fields))
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


def step(version: int) -> dict[str, str]:
    return {"If-Match": f'"{version}"'}


def today() -> date:
    return system_now().astimezone(SHANGHAI).date()


async def test_a_desk_disputes_an_event_of_its_township_within_the_window(
    disputes_app: RunningCases, intake: httpx.AsyncClient, case_keys: dict[str, str]
) -> None:
    filed = await filed_on_new_visit(disputes_app, intake, case_keys)

    assert filed["state"] == "filed" and filed["version"] == 1
    assert filed["decider_code"] == "340722000000"
    assert (
        filed["dispute_until"] is not None and date.fromisoformat(filed["dispute_until"]) > today()
    )
    assert [s["action"] for s in filed["steps"]] == ["filed"]
    assert filed["steps"][0]["reason"] == "来访人户籍不在本村"
    shown = await disputes_app.client.get(f"/v1/disputes/{filed['dispute_id']}")
    assert shown.status_code == 200 and shown.headers["ETag"] == '"1"'


async def test_a_second_live_dispute_on_the_event_is_a_conflict(
    disputes_app: RunningCases, intake: httpx.AsyncClient, case_keys: dict[str, str]
) -> None:
    filed = await filed_on_new_visit(disputes_app, intake, case_keys)

    again = await disputes_app.client.post(
        "/v1/disputes",
        json=dispute(filed["event_id"], grounds="facts", proposed_unit=None),
        headers=bearer(case_keys["county_desk"]),
    )

    assert again.status_code == 409, again.text
    reused = await disputes_app.client.post(
        "/v1/disputes",
        json=dispute(str(uuid.uuid4()), dispute_id=filed["dispute_id"]),
        headers=bearer(case_keys["township_desk"]),
    )
    assert reused.status_code == 409, reused.text


async def test_keys_outside_the_units_side_cannot_dispute(
    disputes_app: RunningCases, intake: httpx.AsyncClient, case_keys: dict[str, str]
) -> None:
    event_id = await posted(intake, case_keys["township_desk"], visit(VILLAGE))
    tries = {name: dispute(event_id) for name in ("sibling_desk", "township_reader", "city_bureau")}
    other_desk = await file_when_known(
        disputes_app, case_keys["sibling_desk"], tries["sibling_desk"]
    )
    reader = await disputes_app.client.post(
        "/v1/disputes", json=tries["township_reader"], headers=bearer(case_keys["township_reader"])
    )
    city = await disputes_app.client.post(
        "/v1/disputes", json=tries["city_bureau"], headers=bearer(case_keys["city_bureau"])
    )

    assert other_desk.status_code == 403
    assert reader.status_code == 403
    assert city.status_code == 403  # above the county
    for body in tries.values():
        shown = await disputes_app.client.get(
            f"/v1/disputes/{body['dispute_id']}", headers=bearer(case_keys["admin"])
        )
        assert shown.status_code == 404


async def test_a_late_dispute_is_refused_naming_the_last_day(
    disputes_app: RunningCases,
    intake: httpx.AsyncClient,
    case_keys: dict[str, str],
    clock: MovableClock,
) -> None:
    event_id = await posted(intake, case_keys["township_desk"], visit(VILLAGE))
    window = await disputes_app.deadlines.last_day(today(), DISPUTE_WINDOW, name="test")
    assert window.last_day is not None, "the seeded calendar must cover the coming days"
    clock.days = (window.last_day - today()).days + 1
    body = dispute(event_id)

    late = await file_when_known(disputes_app, case_keys["township_desk"], body)

    assert late.status_code == 422, late.text
    assert str(window.last_day) in late.json()["detail"]
    assert late.json()["errors"][0]["dispute_until"] == str(window.last_day)
    shown = await disputes_app.client.get(
        f"/v1/disputes/{body['dispute_id']}", headers=bearer(case_keys["admin"])
    )
    assert shown.status_code == 404


async def test_corrections_and_work_records_cannot_be_disputed(
    disputes_app: RunningCases, intake: httpx.AsyncClient, case_keys: dict[str, str]
) -> None:
    target = visit(VILLAGE)
    await posted(intake, case_keys["township_desk"], target)
    correction = await posted(intake, case_keys["township_desk"], voided(target))
    work = await posted(intake, case_keys["township_desk"], meeting(VILLAGE))

    for event_id in (correction, work):
        refused = await file_when_known(disputes_app, case_keys["township_desk"], dispute(event_id))
        assert refused.status_code == 422, refused.text
    voided_target = await file_when_known(
        disputes_app, case_keys["township_desk"], dispute(target["event_id"])
    )
    assert voided_target.status_code == 409


async def test_the_county_bureau_decides_with_a_reason_and_the_current_version(
    disputes_app: RunningCases, intake: httpx.AsyncClient, case_keys: dict[str, str]
) -> None:
    filed = await filed_on_new_visit(disputes_app, intake, case_keys)
    url = f"/v1/disputes/{filed['dispute_id']}/decide"
    ruling = {"decision": "uphold_reattribute", "new_unit": SIBLING_VILLAGE, "reason": "核实"}

    wrong = await disputes_app.client.post(
        url, json=ruling, headers=bearer(case_keys["city_bureau"]) | step(1)
    )
    no_reason = await disputes_app.client.post(
        url,
        json={**ruling, "reason": ""},
        headers=bearer(case_keys["county_bureau"]) | step(1),
    )
    stale = await disputes_app.client.post(
        url, json=ruling, headers=bearer(case_keys["county_bureau"]) | step(7)
    )
    missing = await disputes_app.client.post(
        url, json=ruling, headers=bearer(case_keys["county_bureau"])
    )
    outside = await disputes_app.client.post(
        url,
        json={**ruling, "new_unit": CITY},
        headers=bearer(case_keys["county_bureau"]) | step(1),
    )
    decided = await disputes_app.client.post(
        url, json=ruling, headers=bearer(case_keys["county_bureau"]) | step(1)
    )

    assert (wrong.status_code, no_reason.status_code) == (403, 422)
    assert (stale.status_code, missing.status_code) == (412, 428)
    assert outside.status_code == 403  # the city is beyond the county bureau
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert body["state"] == "decided" and body["version"] == 2
    assert body["decision"]["new_unit"] == SIBLING_VILLAGE
    assert date.fromisoformat(body["review_request_until"]) >= today() + timedelta(days=5)
    listed = await disputes_app.client.get(
        "/v1/disputes", params={"state": "decided"}, headers=bearer(case_keys["county_bureau"])
    )
    assert filed["dispute_id"] in {d["dispute_id"] for d in listed.json()["disputes"]}
    assert [(s["action"], s["reason"]) for s in body["steps"]] == [
        ("filed", "来访人户籍不在本村"),
        ("decided", "核实"),
    ]


async def test_the_losing_side_asks_the_city_which_reviews_finally(
    disputes_app: RunningCases, intake: httpx.AsyncClient, case_keys: dict[str, str]
) -> None:
    filed = await filed_on_new_visit(disputes_app, intake, case_keys)
    base = f"/v1/disputes/{filed['dispute_id']}"
    ruling = {"decision": "uphold_reattribute", "new_unit": SIBLING_VILLAGE, "reason": "核实"}
    await disputes_app.client.post(
        f"{base}/decide", json=ruling, headers=bearer(case_keys["county_bureau"]) | step(1)
    )

    winner = await disputes_app.client.post(
        f"{base}/review-request",
        json={"reason": "不服"},
        headers=bearer(case_keys["township_desk"]) | step(2),
    )
    loser = await disputes_app.client.post(
        f"{base}/review-request",
        json={"reason": "不服"},
        headers=bearer(case_keys["sibling_desk"]) | step(2),
    )
    county_reviews = await disputes_app.client.post(
        f"{base}/review",
        json={"decision": "reject", "reason": "复核"},
        headers=bearer(case_keys["county_bureau"]) | step(3),
    )
    reviewed = await disputes_app.client.post(
        f"{base}/review",
        json={"decision": "reject", "reason": "复核：属实"},
        headers=bearer(case_keys["city_bureau"]) | step(3),
    )
    again = await disputes_app.client.post(
        f"{base}/review",
        json={"decision": "uphold_void", "reason": "再议"},
        headers=bearer(case_keys["city_bureau"]) | step(4),
    )

    assert winner.status_code == 403
    assert loser.status_code == 200, loser.text
    assert county_reviews.status_code == 403
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["state"] == "reviewed"
    assert reviewed.json()["review"]["decision"] == "reject"
    assert again.status_code == 409


async def test_a_review_asked_after_five_working_days_is_refused(
    disputes_app: RunningCases,
    intake: httpx.AsyncClient,
    case_keys: dict[str, str],
    clock: MovableClock,
) -> None:
    filed = await filed_on_new_visit(disputes_app, intake, case_keys)
    base = f"/v1/disputes/{filed['dispute_id']}"
    decided = await disputes_app.client.post(
        f"{base}/decide",
        json={"decision": "reject", "reason": "不属实"},
        headers=bearer(case_keys["county_bureau"]) | step(1),
    )
    until = decided.json()["review_request_until"]
    clock.days = (date.fromisoformat(until) - today()).days + 1

    late = await disputes_app.client.post(
        f"{base}/review-request",
        json={"reason": "不服"},
        headers=bearer(case_keys["township_desk"]) | step(2),
    )

    assert late.status_code == 422, late.text
    assert until in late.json()["detail"]


async def test_the_filer_withdraws_and_the_event_may_be_disputed_again(
    disputes_app: RunningCases, intake: httpx.AsyncClient, case_keys: dict[str, str]
) -> None:
    filed = await filed_on_new_visit(disputes_app, intake, case_keys)
    base = f"/v1/disputes/{filed['dispute_id']}"

    other = await disputes_app.client.post(
        f"{base}/withdraw",
        json={"reason": "x"},
        headers=bearer(case_keys["sibling_desk"]) | step(1),
    )
    withdrawn = await disputes_app.client.post(
        f"{base}/withdraw",
        json={"reason": "误报"},
        headers=bearer(case_keys["township_desk"]) | step(1),
    )
    again = await disputes_app.client.post(
        "/v1/disputes",
        json=dispute(filed["event_id"], grounds="facts", proposed_unit=None),
        headers=bearer(case_keys["township_desk"]),
    )

    assert other.status_code == 403
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"
    assert again.status_code == 201, again.text


async def test_every_step_is_published_to_the_disputes_topic_in_order(
    disputes_app: RunningCases,
    intake: httpx.AsyncClient,
    case_keys: dict[str, str],
    settings: Settings,
) -> None:
    filed = await filed_on_new_visit(disputes_app, intake, case_keys)
    await disputes_app.client.post(
        f"/v1/disputes/{filed['dispute_id']}/decide",
        json={"decision": "uphold_void", "reason": "重复登记"},
        headers=bearer(case_keys["county_bureau"]) | step(1),
    )

    async def actions() -> list[str] | None:
        import json

        found = [
            json.loads(value)
            for _, _, value, _ in await read_topic(settings, settings.disputes_topic)
        ]
        mine = [
            m["step"]["action"] for m in found if m["dispute"]["dispute_id"] == filed["dispute_id"]
        ]
        return mine if len(mine) == 2 else None

    published: list[str] | None = await poll(actions, timeout=30, message="both steps published")
    assert published == ["filed", "decided"]


async def test_the_feed_gives_each_step_once_in_order_to_the_units_side(
    disputes_app: RunningCases, intake: httpx.AsyncClient, case_keys: dict[str, str]
) -> None:
    start = (await disputes_app.client.get("/v1/feed/disputes", params={"limit": 1000})).json()
    cursor = start["next_cursor"]
    while True:  # to the end of what other tests made
        page = await disputes_app.client.get(
            "/v1/feed/disputes", params={"since": cursor, "limit": 1000}
        )
        if page.json()["next_cursor"] == cursor:
            break
        cursor = page.json()["next_cursor"]
    filed = await filed_on_new_visit(disputes_app, intake, case_keys)
    await disputes_app.client.post(
        f"/v1/disputes/{filed['dispute_id']}/withdraw",
        json={"reason": "误报"},
        headers=bearer(case_keys["township_desk"]) | step(1),
    )

    first = await disputes_app.client.get("/v1/feed/disputes", params={"since": cursor, "limit": 1})
    second = await disputes_app.client.get(
        "/v1/feed/disputes", params={"since": first.json()["next_cursor"], "limit": 10}
    )
    sibling = await disputes_app.client.get(
        "/v1/feed/disputes",
        params={"since": cursor},
        headers=bearer(case_keys["sibling_reader"]),
    )
    bad = await disputes_app.client.get("/v1/feed/disputes", params={"since": "nonsense"})

    steps = first.json()["items"] + second.json()["items"]
    assert [(s["dispute_id"], s["action"]) for s in steps] == [
        (filed["dispute_id"], "filed"),
        (filed["dispute_id"], "withdrawn"),
    ]
    assert sibling.json()["items"] == []
    assert bad.status_code == 422


async def test_the_list_gives_each_dispute_the_last_day_to_dispute_its_event(
    disputes_app: RunningCases, intake: httpx.AsyncClient, case_keys: dict[str, str]
) -> None:
    filed = await filed_on_new_visit(disputes_app, intake, case_keys)

    listed = await disputes_app.client.get(
        "/v1/disputes",
        params={"root": COUNTY, "state": "filed"},
        headers=bearer(case_keys["county_bureau"]),
    )

    assert listed.status_code == 200, listed.text
    mine = [d for d in listed.json()["disputes"] if d["dispute_id"] == filed["dispute_id"]]
    assert [d["dispute_until"] for d in mine] == [filed["dispute_until"]]
    assert filed["dispute_until"] is not None


async def test_a_dispute_says_which_steps_the_asking_key_may_take(
    disputes_app: RunningCases, intake: httpx.AsyncClient, case_keys: dict[str, str]
) -> None:
    filed = await filed_on_new_visit(disputes_app, intake, case_keys)
    path = f"/v1/disputes/{filed['dispute_id']}"

    async def actions(key: str) -> list[str]:
        shown = await disputes_app.client.get(path, headers=bearer(case_keys[key]))
        assert shown.status_code == 200, shown.text
        found: list[str] = shown.json()["actions"]
        return found

    assert await actions("county_bureau") == ["decide"]
    assert await actions("township_desk") == ["withdraw"]
    assert await actions("city_bureau") == []
    decided = await disputes_app.client.post(
        f"{path}/decide",
        json={"decision": "reject", "reason": "属实"},
        headers=bearer(case_keys["county_bureau"]) | step(1),
    )
    assert decided.status_code == 200, decided.text
    assert await actions("township_desk") == ["review-request"]
    assert await actions("county_bureau") == []
