"""Create, submit, review and award, with If-Match on every change: the path of one
application, each refusal answered with problem+json and nothing stored."""

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.applications.config import ApplicationsSettings
from services.applications.main import create_app
from shared.campaign import SHANGHAI
from shared.db import Database
from tests.applications.conftest import APPLICATION_PERIODS, StatusWriter, campaign_with
from tests.conftest import COUNTY, SIBLING_VILLAGE, VILLAGE
from tests.support.app import bearer, serve
from tests.support.applications import act, create, decisions, flag, stored

V1, V2, V3, V4 = VILLAGE, "340722100202", "340722100203", SIBLING_VILLAGE
TOWNSHIP = "340722100000"
OTHER_COUNTY_VILLAGE = "350101100201"
PROBLEM = "application/problem+json"


def units_of(application: dict[str, Any]) -> dict[str, str]:
    return {unit["code"]: unit["state"] for unit in application["units"]}


async def test_an_application_goes_from_draft_to_decided_and_titles_list_the_awarded(
    applications: httpx.AsyncClient, bureau_keys: dict[str, str]
) -> None:
    period = "a-workflow"
    created = await create(
        applications, bureau_keys["county_bureau"], period=period, codes=(V1, V2, V3, TOWNSHIP)
    )
    assert created.status_code == 201, created.text
    draft = created.json()
    assert (draft["state"], draft["version"], created.headers["etag"]) == ("draft", 1, '"1"')
    assert set(units_of(draft).values()) == {"proposed"}
    assert draft["county_code"] == COUNTY

    response = await act(
        applications, bureau_keys["county_bureau"], application=draft, action="submit"
    )
    assert response.status_code == 200, response.text
    submitted = response.json()
    assert (submitted["state"], submitted["version"]) == ("submitted", 2)
    assert all(u["evidence"]["status"]["three_no"] for u in submitted["units"])

    review = decisions("approve", V1, V2, TOWNSHIP)
    review["decisions"].append({"code": V3, "decision": "return", "reason": "自评材料不全"})
    response = await act(
        applications,
        bureau_keys["city_bureau"],
        application=submitted,
        action="review",
        body=review,
    )
    assert response.status_code == 200, response.text
    reviewed = response.json()
    assert reviewed["state"] == "reviewed" and reviewed["version"] == 3
    assert units_of(reviewed) == {
        V1: "recommended",
        V2: "recommended",
        TOWNSHIP: "recommended",
        V3: "returned",
    }

    award = decisions("award", V1, TOWNSHIP)
    award["decisions"].append({"code": V2, "decision": "reject", "reason": "材料不实"})
    response = await act(
        applications,
        bureau_keys["province_bureau"],
        application=reviewed,
        action="award",
        body=award,
    )
    assert response.status_code == 200, response.text
    decided = response.json()
    assert decided["state"] == "decided"
    assert units_of(decided) == {V1: "awarded", TOWNSHIP: "awarded", V2: "rejected", V3: "returned"}
    returned = next(u for u in decided["units"] if u["code"] == V3)
    assert returned["decision_reason"] == "自评材料不全"

    titles = await applications.get(
        "/v1/titles",
        params={"root": COUNTY, "period": period},
        headers=bearer(bureau_keys["county_reader"]),
    )
    assert titles.status_code == 200, titles.text
    assert {(t["unit"]["code"], t["state"]) for t in titles.json()["items"]} == {
        (V1, "held"),
        (TOWNSHIP, "held"),
    }

    history = await applications.get(
        f"/v1/applications/{draft['application_id']}/history",
        headers=bearer(bureau_keys["city_bureau"]),
    )
    steps = history.json()["items"]
    assert [(s["action"], s["unit_code"]) for s in steps] == [
        ("created", None),
        ("submitted", None),
        ("approved", V1),
        ("approved", V2),
        ("approved", TOWNSHIP),
        ("returned", V3),
        ("awarded", V1),
        ("awarded", TOWNSHIP),
        ("rejected", V2),
    ]
    key_id = bureau_keys["city_bureau"].split("_")[1]
    assert (steps[5]["key_id"], steps[5]["role"], steps[5]["reason"]) == (
        key_id,
        "bureau",
        "自评材料不全",
    )
    assert steps[5]["scope_code"] == "340700000000"


async def test_units_refused_are_each_named_with_why_and_nothing_is_stored(
    applications: httpx.AsyncClient,
    bureau_keys: dict[str, str],
    db: Database,
    set_status: StatusWriter,
) -> None:
    period = "a-refusals"
    key = bureau_keys["county_bureau"]
    await set_status(V1, period, three_no=False, event_ids=["e-1", "e-2"], version=2)
    earlier = await create(applications, key, period=period, codes=(V2,))
    assert earlier.status_code == 201
    before = await stored(db, period)

    # Not eligible now, or in another live application: 409, each named.
    response = await create(applications, key, period=period, codes=(V1, V2, V3))
    assert response.status_code == 409 and response.headers["content-type"] == PROBLEM
    errors = {e["unit_code"]: e for e in response.json()["errors"]}
    assert set(errors) == {V1, V2}
    assert errors[V1]["type"] == "not_eligible"
    assert errors[V1]["counting_event_ids"] == ["e-1", "e-2"]
    assert errors[V2]["type"] == "already_applied"
    assert errors[V2]["application_id"] == earlier.json()["application_id"]

    # Not candidates at all: 422, naming those and the conflicts alike.
    response = await create(
        applications,
        key,
        period=period,
        codes=(OTHER_COUNTY_VILLAGE, "340722999999", V3, V3, V1),
    )
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    kinds = [(e["field"], e["type"]) for e in response.json()["errors"]]
    assert kinds == [
        ("units[0].code", "outside_county"),
        ("units[1].code", "unknown_unit"),
        ("units[3].code", "duplicate"),
        ("units[4].code", "not_eligible"),
    ]
    assert await stored(db, period) == before


async def test_bad_bodies_are_422_and_store_nothing(
    applications: httpx.AsyncClient, bureau_keys: dict[str, str], db: Database
) -> None:
    period = "a-refusals"
    key = bureau_keys["county_bureau"]
    before = await stored(db, period)
    unit = {"code": V3, "self_evaluation": "好"}
    bodies = {
        "no units": {"period": period, "units": []},
        "no self-evaluation": {"period": period, "units": [{"code": V3}]},
        "NUL": {"period": period, "units": [unit | {"self_evaluation": "a\u0000b"}]},
        "unknown field": {"period": period, "units": [unit], "extra": 1},
        "bad code": {"period": period, "units": [unit | {"code": "34072210020"}]},
        "rolling": {"period": "rolling", "units": [unit]},
        "unknown period": {"period": "1999", "units": [unit]},
    }
    for name, body in bodies.items():
        response = await applications.post("/v1/applications", json=body, headers=bearer(key))
        assert response.status_code == 422, (name, response.text)
        assert response.headers["content-type"] == PROBLEM, name
        assert response.json()["errors"], name
    assert await stored(db, period) == before


async def test_submit_checks_eligibility_again_and_snapshots_the_evidence(
    applications: httpx.AsyncClient,
    bureau_keys: dict[str, str],
    db: Database,
    set_status: StatusWriter,
) -> None:
    period = "a-evidence"
    key = bureau_keys["county_bureau"]
    await set_status(V1, period, three_no=True, version=3, counts={"collective": 0})
    draft = (await create(applications, key, period=period, codes=(V1, V2))).json()
    await set_status(V2, period, three_no=False, event_ids=["late-1"], version=1)
    before = await stored(db, period)

    refused = await act(applications, key, application=draft, action="submit")
    assert refused.status_code == 409, refused.text
    [error] = refused.json()["errors"]
    assert (error["unit_code"], error["type"], error["counting_event_ids"]) == (
        V2,
        "not_eligible",
        ["late-1"],
    )
    assert await stored(db, period) == before

    await set_status(V2, period, three_no=True, version=2)
    submitted = await act(applications, key, application=draft, action="submit")
    assert submitted.status_code == 200, submitted.text
    evidence = {u["code"]: u["evidence"] for u in submitted.json()["units"]}
    assert evidence[V1]["status"]["version"] == 3
    assert evidence[V1]["status"]["counts"] == {
        "skip_level": 0,
        "non_reception_site": 0,
        "collective": 0,
        "incident": 0,
    }
    assert evidence[V2]["status"]["version"] == 2
    assert evidence[V1]["self_evaluation"] == f"{V1} 全年无越级上访"
    assert evidence[V1]["rectifications"] == ["台账"]
    assert evidence[V1]["cadence"] is None and evidence[V1]["satisfaction"] is None

    again = await act(applications, key, application=submitted.json(), action="submit")
    assert again.status_code == 409, again.text


async def test_two_reviewers_at_once_get_one_success_and_one_412(
    applications: httpx.AsyncClient, bureau_keys: dict[str, str], db: Database
) -> None:
    period = "a-stale"
    county, city = bureau_keys["county_bureau"], bureau_keys["city_bureau"]
    draft = (await create(applications, county, period=period, codes=(V1, V2))).json()
    submitted = (await act(applications, county, application=draft, action="submit")).json()

    first, second = await asyncio.gather(
        act(
            applications,
            city,
            application=submitted,
            action="review",
            body=decisions("approve", V1),
        ),
        act(
            applications,
            city,
            application=submitted,
            action="review",
            body=decisions("return", V1, reason="不符合"),
        ),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 412], (first.text, second.text)
    assert [first, second][[first.status_code, second.status_code].index(412)].headers[
        "content-type"
    ] == PROBLEM
    before = await stored(db, period)

    stale = await act(
        applications, city, application=submitted, action="review", body=decisions("approve", V2)
    )
    assert stale.status_code == 412
    headers = bearer(city)  # no If-Match at all
    missing = await applications.post(
        f"/v1/applications/{draft['application_id']}/review",
        json=decisions("approve", V2),
        headers=headers,
    )
    assert missing.status_code == 428 and missing.headers["content-type"] == PROBLEM
    assert await stored(db, period) == before


async def test_an_if_match_of_digits_other_than_ascii_is_412_and_changes_nothing(
    applications: httpx.AsyncClient, bureau_keys: dict[str, str], db: Database
) -> None:
    period = "a-headers"
    county = bureau_keys["county_bureau"]
    draft = (await create(applications, county, period=period, codes=(V1,))).json()
    before = await stored(db, period)
    url = f"/v1/applications/{draft['application_id']}/submit"

    # Headers are Latin-1: the byte 0xB2 is "²", which str.isdigit() takes for a digit.
    for sent in (b'"\xb2"', b"\xb2", b'W/"\xb9"', '"١"'.encode()):
        response = await applications.post(url, headers=bearer(county) | {"If-Match": sent})
        assert response.status_code == 412, (sent, response.status_code, response.text)
        assert response.headers["content-type"] == PROBLEM

    assert await stored(db, period) == before


async def test_a_flagged_unit_cannot_be_approved_or_awarded(
    applications: httpx.AsyncClient, bureau_keys: dict[str, str], db: Database
) -> None:
    period = "a-flags"
    county, city, province = (
        bureau_keys["county_bureau"],
        bureau_keys["city_bureau"],
        bureau_keys["province_bureau"],
    )
    draft = (await create(applications, county, period=period, codes=(V1, V2))).json()
    submitted = (await act(applications, county, application=draft, action="submit")).json()
    await flag(db, application_id=draft["application_id"], unit_code=V1, event_ids=["late"])
    before = await stored(db, period)

    refused = await act(
        applications,
        city,
        application=submitted,
        action="review",
        body=decisions("approve", V1, V2),
    )
    assert refused.status_code == 409, refused.text
    [error] = refused.json()["errors"]
    assert (error["unit_code"], error["type"], error["flag_event_ids"]) == (V1, "flagged", ["late"])
    assert await stored(db, period) == before

    reviewed = await act(
        applications, city, application=submitted, action="review", body=decisions("approve", V2)
    )
    assert reviewed.status_code == 200, reviewed.text
    await flag(db, application_id=draft["application_id"], unit_code=V2, event_ids=["late-2"])
    refused = await act(
        applications,
        province,
        application=reviewed.json(),
        action="award",
        body=decisions("award", V2),
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["flag_event_ids"] == ["late-2"]

    shown = await applications.get(
        f"/v1/applications/{draft['application_id']}", headers=bearer(county)
    )
    flags = {u["code"]: u["flag"] for u in shown.json()["units"]}
    assert flags[V2]["event_ids"] == ["late-2"] and flags[V2]["since"]


async def test_decisions_on_units_not_awaiting_them_are_refused(
    applications: httpx.AsyncClient, bureau_keys: dict[str, str], db: Database
) -> None:
    period = "a-flags"
    county, city, province = (
        bureau_keys["county_bureau"],
        bureau_keys["city_bureau"],
        bureau_keys["province_bureau"],
    )
    draft = (await create(applications, county, period=period, codes=(V3,))).json()
    before = await stored(db, period)
    # A draft is not reviewed; an unknown unit is bad input; a submitted unit is not awarded.
    assert (
        await act(
            applications, city, application=draft, action="review", body=decisions("approve", V3)
        )
    ).status_code == 409
    assert (
        await act(
            applications, city, application=draft, action="review", body=decisions("approve", V4)
        )
    ).status_code == 422
    assert (
        await act(
            applications,
            city,
            application=draft,
            action="review",
            body={"decisions": [{"code": V3, "decision": "return"}]},
        )
    ).status_code == 422
    submitted = (await act(applications, county, application=draft, action="submit")).json()
    before = await stored(db, period)
    assert (
        await act(
            applications,
            province,
            application=submitted,
            action="award",
            body=decisions("award", V3),
        )
    ).status_code == 409
    assert (
        await act(
            applications,
            city,
            application=submitted,
            action="review",
            body=decisions("approve", V3, V3),
        )
    ).status_code == 422
    assert await stored(db, period) == before
    unknown = await applications.post(
        "/v1/applications/00000000-0000-4000-8000-000000000000/submit",
        headers=bearer(county) | {"If-Match": "1"},
    )
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM


async def awarded(
    client: httpx.AsyncClient, keys: dict[str, str], *, period: str, codes: tuple[str, ...]
) -> dict[str, Any]:
    draft = (await create(client, keys["county_bureau"], period=period, codes=codes)).json()
    submitted = (
        await act(client, keys["county_bureau"], application=draft, action="submit")
    ).json()
    reviewed = (
        await act(
            client,
            keys["city_bureau"],
            application=submitted,
            action="review",
            body=decisions("approve", *codes),
        )
    ).json()
    response = await act(
        client,
        keys["province_bureau"],
        application=reviewed,
        action="award",
        body=decisions("award", *codes),
    )
    assert response.status_code == 200, response.text
    decided: dict[str, Any] = response.json()
    return decided


async def test_titles_show_at_risk_while_flagged_and_the_province_revokes_with_a_reason(
    applications: httpx.AsyncClient, bureau_keys: dict[str, str], db: Database
) -> None:
    period = "a-titles"
    province = bureau_keys["province_bureau"]
    decided = await awarded(applications, bureau_keys, period=period, codes=(V1, V2))
    await flag(db, application_id=decided["application_id"], unit_code=V1, event_ids=["late"])

    async def titles() -> dict[str, dict[str, Any]]:
        response = await applications.get(
            "/v1/titles", params={"period": period, "root": COUNTY}, headers=bearer(province)
        )
        assert response.status_code == 200, response.text
        return {t["unit"]["code"]: t for t in response.json()["items"]}

    shown = await titles()
    assert (shown[V1]["state"], shown[V1]["flag"]["event_ids"]) == ("at_risk", ["late"])
    assert shown[V2]["state"] == "held" and shown[V2]["flag"] is None

    url = f"/v1/titles/{V1}/{period}/revoke"
    version = {"If-Match": str(shown[V1]["version"])}
    before = await stored(db, period)
    for body in ({}, {"reason": ""}, {"reason": "x\u0000"}):
        bad = await applications.post(url, json=body, headers=bearer(province) | version)
        assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    stale = await applications.post(
        url, json={"reason": "通报"}, headers=bearer(province) | {"If-Match": "1"}
    )
    assert stale.status_code == 412
    missing = await applications.post(
        f"/v1/titles/{V3}/{period}/revoke",
        json={"reason": "通报"},
        headers=bearer(province) | version,
    )
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert await stored(db, period) == before

    revoked = await applications.post(
        url, json={"reason": "2018年12月通报越级上访"}, headers=bearer(province) | version
    )
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["state"], revoked.json()["reason"]) == (
        "revoked",
        "2018年12月通报越级上访",
    )
    shown = await titles()
    assert shown[V1]["state"] == "revoked" and shown[V2]["state"] == "held"
    again = await applications.post(
        url,
        json={"reason": "再次"},
        headers=bearer(province) | {"If-Match": str(shown[V1]["version"])},
    )
    assert again.status_code == 409

    history = await applications.get(
        f"/v1/applications/{decided['application_id']}/history", headers=bearer(province)
    )
    last = history.json()["items"][-1]
    assert (last["action"], last["unit_code"], last["reason"], last["role"]) == (
        "revoked",
        V1,
        "2018年12月通报越级上访",
        "bureau",
    )
    # A revoked unit holds no place in the period: it may be applied for again.
    again_applied = await create(
        applications, bureau_keys["county_bureau"], period=period, codes=(V1,)
    )
    assert again_applied.status_code == 201, again_applied.text


async def test_outside_the_window_creating_and_submitting_answer_409_with_the_window(
    applications: httpx.AsyncClient,
    applications_settings: ApplicationsSettings,
    bureau_keys: dict[str, str],
    db: Database,
    tmp_path: Path,
) -> None:
    period = "a-window"
    key = bureau_keys["county_bureau"]
    draft = (await create(applications, key, period=period, codes=(V1,))).json()
    tomorrow = datetime.now(SHANGHAI).date() + timedelta(days=1)
    day = f"{tomorrow.month:02d}-{tomorrow.day:02d}"
    window = {"window": {"start_month_day": day, "end_month_day": day}}
    closed_campaign = campaign_with(tmp_path, periods=APPLICATION_PERIODS, applications=window)
    closed = applications_settings.model_copy(
        update={"campaign_file": closed_campaign, "applications_run_relay": False}
    )
    before = await stored(db, period)
    async with serve(create_app(closed), "http://closed") as client:
        refused = await create(client, key, period=period, codes=(V2,))
        assert refused.status_code == 409 and refused.headers["content-type"] == PROBLEM
        assert f"{day} to {day}" in refused.json()["detail"]
        [error] = refused.json()["errors"]
        assert (error["start_month_day"], error["end_month_day"]) == (day, day)
        late = await act(client, key, application=draft, action="submit")
        assert late.status_code == 409 and f"{day} to {day}" in late.json()["detail"]
    assert await stored(db, period) == before

    open_all_year = applications_settings.model_copy(
        update={
            "campaign_file": closed_campaign,
            "applications_run_relay": False,
            "application_window": "01-01/12-31",
        }
    )
    async with serve(create_app(open_all_year), "http://demo") as client:
        assert (await act(client, key, application=draft, action="submit")).status_code == 200


async def test_refused_units_are_named_in_the_order_sent(
    applications: httpx.AsyncClient, bureau_keys: dict[str, str]
) -> None:
    codes = tuple(f"3501011002{n:02d}" for n in range(1, 4)) * 4  # another county's, 12 of them
    response = await create(
        applications, bureau_keys["county_bureau"], period="a-refusals", codes=codes
    )
    assert response.status_code == 422
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == [f"units[{i}].code" for i in range(12)]


async def test_the_service_reports_its_health_and_readiness(
    applications: httpx.AsyncClient,
) -> None:
    assert (await applications.get("/healthz")).json() == {"status": "ok"}
    ready = await applications.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["required"] == ["database"]
    assert ready.json()["checks"] == {"database": True, "kafka": True}


async def test_an_admin_names_the_county_it_applies_for(
    applications: httpx.AsyncClient, bureau_keys: dict[str, str], db: Database
) -> None:
    period = "a-refusals"
    admin = bureau_keys["admin"]
    before = await stored(db, period)
    assert (await create(applications, admin, period=period, codes=(V4,))).status_code == 422
    as_city = await create(
        applications, admin, period=period, codes=(V4,), county_code="340700000000"
    )
    assert as_city.status_code == 422 and as_city.json()["errors"][0]["field"] == "county_code"
    assert await stored(db, period) == before
    created = await create(applications, admin, period=period, codes=(V4,), county_code=COUNTY)
    assert created.status_code == 201, created.text
    assert created.json()["county_code"] == COUNTY
