"""A village moved to another township after its events were counted: evaluation makes its old
township three-no and marks the new one, and reporting's summaries of both townships (their
own status and their villages') follow, without a rebuild. The units are a county of their
own, in a province no other test uses."""

from pathlib import Path
from typing import Any

from shared.access import service as access_service
from shared.access.models import Role
from shared.registry.loader import load_file
from tests.support import events
from tests.support.pipeline import Pipeline
from tests.support.waiting import wait_until

PROVINCE, CITY, COUNTY = "530000000000", "530100000000", "530101000000"
OLD, NEW = "530101100000", "530101101000"
MOVING, STAYING, RESIDENT = "530101100201", "530101100202", "530101101201"
PERIOD = "2019"
UNITS = f"""code,name,level,parent_code
{PROVINCE},测试省,province,
{CITY},测试市,city,{PROVINCE}
{COUNTY},测试县,county,{CITY}
{OLD},旧镇,township,{COUNTY}
{NEW},新镇,township,{COUNTY}
{MOVING},迁村,village,{OLD}
{STAYING},留村,village,{OLD}
{RESIDENT},新镇村,village,{NEW}
"""


def registry_file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def load(pipeline: Pipeline, path: Path) -> None:
    async with pipeline.db.engine.begin() as connection:
        await load_file(connection, path)


async def key(pipeline: Pipeline, role: Role) -> str:
    async with pipeline.db.engine.begin() as connection:
        return await access_service.create(connection, role=role, scope_code=COUNTY)


async def figures(pipeline: Pipeline, reader: str, root: str) -> dict[str, Any]:
    """(total, three-no) per level of the root's summary."""
    response = await pipeline.reporting.get("/v1/reports/summary", reader, root=root, period=PERIOD)
    assert response.status_code == 200, response.text
    levels = response.json()["levels"]
    return {level: (f["total"], f["three_no"]) for level, f in levels.items()}


async def test_both_townships_summaries_follow_a_village_moved_after_its_events(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    await load(pipeline, registry_file(tmp_path / "units.csv", UNITS))
    desk, reader = await key(pipeline, Role.desk), await key(pipeline, Role.reader)
    # Six to the city: counts against the village and its township, not the county.
    visit = events.visit(
        MOVING, destination="city", headcount=6, occurred_at=f"{PERIOD}-06-03T09:30:00+08:00"
    )
    await pipeline.post(desk, visit)
    await pipeline.drained()
    assert await figures(pipeline, reader, OLD) == {"township": (1, 0), "village": (2, 1)}
    assert await figures(pipeline, reader, NEW) == {"township": (1, 1), "village": (1, 1)}

    moved_file = f"code,name,level,parent_code\n{MOVING},迁村,village,{NEW}\n"
    await load(pipeline, registry_file(tmp_path / "moved.csv", moved_file))

    async def moved() -> bool:
        return await figures(pipeline, reader, OLD) == {"township": (1, 1), "village": (1, 1)}

    await wait_until(moved, timeout=20, message="the old township's summary to follow the move")
    await pipeline.drained()
    assert await figures(pipeline, reader, NEW) == {"township": (1, 0), "village": (2, 1)}
    assert await figures(pipeline, reader, COUNTY) == {
        "county": (1, 1),
        "township": (2, 1),
        "village": (3, 2),
    }
    old = await pipeline.reporting.get(f"/v1/units/{OLD}/status", reader, period=PERIOD)
    new = await pipeline.reporting.get(f"/v1/units/{NEW}/status", reader, period=PERIOD)
    assert old.json()["three_no"] is True and old.json()["version"] == 2
    assert new.json()["counting_event_ids"] == [visit["event_id"]]
