"""The applications feed: every step under the root in order, never skipped or repeated from
the returned cursor, also while steps are being made and across a restart of the service; and
each step published to the applications topic, keyed by county."""

import asyncio
import json
from typing import Any

import httpx
import sqlalchemy as sa

from services.applications.config import ApplicationsSettings
from services.applications.main import create_app
from shared.db import Database
from shared.messages import parse_application_step
from tests.applications.conftest import OTHER_PROVINCE
from tests.conftest import COUNTY
from tests.support.app import bearer, serve
from tests.support.applications import act, create, decisions
from tests.support.messages import parsed_from_topic
from tests.support.outbox import wait_outbox_drained
from tests.support.stack import read_topic

PERIOD = "a-feed"
VILLAGES = tuple(f"3407221002{n:02d}" for n in range(4, 12))
PROBLEM = "application/problem+json"


async def pull(
    client: httpx.AsyncClient, key: str, *, since: str, root: str = COUNTY, limit: int = 3
) -> tuple[list[dict[str, Any]], str]:
    response = await client.get(
        "/v1/feed/applications",
        params={"root": root, "since": since, "limit": limit},
        headers=bearer(key),
    )
    assert response.status_code == 200, response.text
    page = response.json()
    return page["items"], page["next_cursor"]


async def pull_to_end(
    client: httpx.AsyncClient, key: str, *, since: str
) -> tuple[list[dict[str, Any]], str]:
    pulled: list[dict[str, Any]] = []
    while True:
        items, since = await pull(client, key, since=since)
        if not items:
            return pulled, since
        pulled += items


async def steps_in_county(db: Database) -> list[int]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                "SELECT s.step_id FROM applications.step s JOIN applications.application a "
                "USING (application_id) WHERE a.county_code = :county ORDER BY s.step_id"
            ),
            {"county": COUNTY},
        )
        return [int(r[0]) for r in rows]


async def test_the_feed_never_skips_or_repeats_a_step_while_steps_are_made_and_across_a_restart(
    applications: httpx.AsyncClient,
    applications_settings: ApplicationsSettings,
    bureau_keys: dict[str, str],
    db: Database,
) -> None:
    reader = bureau_keys["city_bureau"]
    county = bureau_keys["county_bureau"]
    writing_done = asyncio.Event()

    async def write() -> None:
        try:
            await asyncio.gather(
                *(create(applications, county, period=PERIOD, codes=(code,)) for code in VILLAGES)
            )
        finally:
            writing_done.set()

    pulled: list[dict[str, Any]] = []
    cursor = ""
    async with serve(create_app(applications_settings), "http://first") as first:
        writer = asyncio.create_task(write())
        while not writing_done.is_set():
            items, cursor = await pull(first, reader, since=cursor)
            pulled += items
        await writer
        items, cursor = await pull(first, reader, since=cursor)
        pulled += items
    # Steps made while the pulling instance is down, then a fresh instance from the cursor.
    draft = (await create(applications, county, period=PERIOD, codes=("340722100212",))).json()
    await act(applications, county, application=draft, action="submit")
    async with serve(create_app(applications_settings), "http://second") as second:
        rest, cursor = await pull_to_end(second, reader, since=cursor)
        pulled += rest
        assert (await pull(second, reader, since=cursor))[0] == []

    ids = [step["step_id"] for step in pulled]
    assert ids == await steps_in_county(db)
    assert len(set(ids)) == len(ids)
    assert ids[-2:] and [s["action"] for s in pulled[-2:]] == ["created", "submitted"]


async def test_each_step_is_published_keyed_by_county(
    applications: httpx.AsyncClient,
    applications_settings: ApplicationsSettings,
    bureau_keys: dict[str, str],
    db: Database,
) -> None:
    county, city = bureau_keys["county_bureau"], bureau_keys["city_bureau"]
    draft = (await create(applications, county, period=PERIOD, codes=("340722100213",))).json()
    submitted = (await act(applications, county, application=draft, action="submit")).json()
    await act(
        applications,
        city,
        application=submitted,
        action="review",
        body=decisions("return", "340722100213", reason="材料不全"),
    )
    await wait_outbox_drained(db, schema="applications")

    messages = await read_topic(applications_settings, applications_settings.application_topic)
    mine = [
        (key, json.loads(value))
        for _, key, value, _ in messages
        if json.loads(value)["application_id"] == draft["application_id"]
    ]
    assert {key for key, _ in mine} == {COUNTY.encode()}
    assert [m["action"] for _, m in mine] == ["created", "submitted", "returned"]
    returned = mine[-1][1]
    assert (returned["county_code"], returned["period"], returned["reason"]) == (
        COUNTY,
        PERIOD,
        "材料不全",
    )
    assert returned["key_id"] == city.split("_")[1] and returned["scope_code"] == "340700000000"
    # Each passes the one parser of steps, and is the step the history serves.
    steps = await parsed_from_topic(
        applications_settings,
        applications_settings.application_topic,
        parse_application_step,
        keys={COUNTY.encode()},
    )
    published = [s for s in steps if str(s.application_id) == draft["application_id"]]
    history = await applications.get(
        f"/v1/applications/{draft['application_id']}/history", headers=bearer(county)
    )
    assert history.status_code == 200, history.text
    assert [s.model_dump(mode="json", exclude={"schema_version"}) for s in published] == (
        history.json()["items"]
    )


async def test_the_feed_keeps_to_the_root_and_the_keys_scope(
    applications: httpx.AsyncClient, bureau_keys: dict[str, str]
) -> None:
    elsewhere, _ = await pull(
        applications, bureau_keys["admin"], since="", root=OTHER_PROVINCE, limit=1000
    )
    assert all(step["county_code"] != COUNTY for step in elsewhere)
    for key in ("other_city_bureau", "county_desk"):
        refused = await applications.get(
            "/v1/feed/applications", params={"root": COUNTY}, headers=bearer(bureau_keys[key])
        )
        assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    for since in ("nonsense", "czE6LTE", "ZTE6MTI"):  # not base64 of ours; s1:-1; e1:12
        bad = await applications.get(
            "/v1/feed/applications",
            params={"root": COUNTY, "since": since},
            headers=bearer(bureau_keys["city_bureau"]),
        )
        assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM, since
