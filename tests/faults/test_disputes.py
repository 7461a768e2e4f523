"""A dispute's decision under faults: the cases service, a real process, dies just before or
just after the decision's transaction commits. Before: nothing of the decision is kept, and the
bureau decides again at the same version. After: the decision is kept with its step, a retry
at the old version is refused as stale, the step is published once when the service is back,
and evaluation applies it once (the village voided exactly one time). The evaluation
consumer's own crash points are tests/evaluation/test_dispute_rulings.py's.

These kill processes: `make test` runs them on a stack of their own (docs/operations.md,
"Tests")."""

import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.access.models import Role
from shared.campaign import SHANGHAI, system_now
from shared.config import DEFAULT_CAMPAIGN_FILE
from shared.consumer import CRASH_EXIT_CODE
from tests.conftest import COUNTY, DEMO_UNITS, VILLAGE
from tests.support import events
from tests.support.app import bearer
from tests.support.cases import dispute, years_covered
from tests.support.pipeline import KeySpecs, Pipeline, running_pipeline
from tests.support.processes import free_port, uvicorn, wait_healthy
from tests.support.stack import IsolatedStack, read_topic
from tests.support.waiting import poll, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(300)]

PERIOD = "2018"
KEYS: KeySpecs = {
    "county_desk": (Role.desk, COUNTY),
    "county_bureau": (Role.bureau, COUNTY),
    "county_reader": (Role.reader, COUNTY),
}
STEPS_SQL = "SELECT action FROM cases.dispute_step WHERE dispute_id = $1 ORDER BY step_id"


@pytest.fixture(scope="module")
async def pipeline(
    stack: IsolatedStack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pipeline]:
    async with running_pipeline(
        campaign_file=DEFAULT_CAMPAIGN_FILE, registry=[DEMO_UNITS], keys=KEYS
    ) as running:
        this_year = system_now().astimezone(SHANGHAI).year
        async with years_covered(
            running.db,
            {this_year, this_year + 1},
            tmp_path_factory.mktemp("calendar"),
            database_url=running.settings.database_url,
        ):
            yield running


@contextmanager
def cases_process(
    pipeline: Pipeline, log: Path, **settings: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The cases service as a process on the pipeline's database and topics."""
    port = free_port()
    env = (
        os.environ
        | {
            "SANWU_DATABASE_URL": pipeline.settings.database_url,
            "SANWU_TOPIC_PREFIX": pipeline.settings.topic_prefix,
            "SANWU_CAMPAIGN_FILE": str(pipeline.settings.campaign_file),
            "SANWU_CASES_RELAY_IDLE_POLL_SECONDS": "0.2",
            "SANWU_LOG_JSON": "false",
        }
        | {f"SANWU_{name.upper()}": value for name, value in settings.items()}
    )
    with log.open("ab") as output:
        popen = subprocess.Popen(
            uvicorn("services.cases.main:create_app", port), env=env, stdout=output, stderr=output
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{url}/healthz", popen)
        yield popen, url
    finally:
        if popen.poll() is None:
            popen.terminate()
            popen.wait(timeout=30)


async def file_dispute(pipeline: Pipeline, url: str, event_id: str) -> str:
    body = dispute(event_id, grounds="facts", proposed_unit=None)
    headers = bearer(pipeline.keys["county_desk"])
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:

        async def filed() -> bool:
            response = await client.post("/v1/disputes", json=body, headers=headers)
            assert response.status_code in (201, 404), response.text
            return response.status_code == 201

        await wait_until(filed, timeout=30, message="the event to reach the cases service")
    return str(body["dispute_id"])


async def decide(pipeline: Pipeline, url: str, dispute_id: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await client.post(
            f"/v1/disputes/{dispute_id}/decide",
            json={"decision": "uphold_void", "reason": "经核查不属实"},
            headers=bearer(pipeline.keys["county_bureau"]) | {"If-Match": '"1"'},
        )


async def steps_of(pipeline: Pipeline, dispute_id: str) -> list[str]:
    async with pipeline.db.connection() as connection:
        rows = await connection.fetch(STEPS_SQL, dispute_id)
    return [row["action"] for row in rows]


async def published(pipeline: Pipeline, dispute_id: str) -> list[str]:
    messages = await read_topic(pipeline.settings, pipeline.settings.disputes_topic)
    found = [json.loads(value) for _, _, value, _ in messages]
    return [m["step"]["action"] for m in found if m["dispute"]["dispute_id"] == dispute_id]


async def village_status(pipeline: Pipeline, village: str) -> dict[str, Any]:
    response = await pipeline.reporting.get(
        f"/v1/units/{village}/status", pipeline.keys["county_reader"], period=PERIOD
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


@pytest.mark.parametrize(
    ("point", "village"),
    [("before_commit", VILLAGE), ("after_commit", "340722100205")],
)
async def test_the_cases_service_killed_around_a_decisions_commit_decides_once(
    point: str, village: str, pipeline: Pipeline, tmp_path: Path
) -> None:
    visit = events.visit(
        village, destination="city", headcount=8, occurred_at="2018-06-03T09:30:00+08:00"
    )
    (event_id,) = await pipeline.post(pipeline.keys["county_desk"], visit)
    await pipeline.drained()
    marked = await village_status(pipeline, village)
    assert marked["three_no"] is False
    log = tmp_path / "cases.log"

    with cases_process(pipeline, log, cases_crash_at=point) as (popen, url):
        dispute_id = await file_dispute(pipeline, url, event_id)
        with contextlib.suppress(httpx.HTTPError):
            await decide(pipeline, url, dispute_id)
        exit_code = await asyncio.to_thread(popen.wait, 30)
    assert exit_code == CRASH_EXIT_CODE, log.read_text()[-3000:]

    if point == "before_commit":
        assert await steps_of(pipeline, dispute_id) == ["filed"]
    else:
        assert await steps_of(pipeline, dispute_id) == ["filed", "decided"]

    with cases_process(pipeline, log) as (_, url):
        again = await decide(pipeline, url, dispute_id)
        assert again.status_code == (200 if point == "before_commit" else 412), again.text

        async def once() -> bool:
            return await published(pipeline, dispute_id) == ["filed", "decided"]

        await wait_until(once, timeout=30, message="the decision published once")

        async def voided() -> dict[str, Any] | None:
            shown = await village_status(pipeline, village)
            return shown if shown["three_no"] else None

        cleared: dict[str, Any] = await poll(
            voided, timeout=30, message="the village three-no again"
        )

    assert await steps_of(pipeline, dispute_id) == ["filed", "decided"]
    assert cleared["version"] == marked["version"] + 1  # voided once
    assert cleared["counting_event_ids"] == []
