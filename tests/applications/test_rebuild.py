"""`sanwu applications rebuild`: the view of statuses rebuilt from the compacted status topic,
with the flags the statuses call for; the applications, their units and their history are the
service's own record and come through a rebuild as they were."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from services.applications.models import application, application_unit, step, unit_status
from services.applications.workflow import UnitState
from shared.db import Database
from tests.conftest import SIBLING_VILLAGE, TOWNSHIP, VILLAGE
from tests.support.dynamic import (
    Applications,
    put_application,
    steps_of,
    stored_statuses,
    unit_row,
)
from tests.support.reporting import StatusPublisher, status, wait_committed

SANWU = str(Path(sys.executable).parent / "sanwu")


def sanwu(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SANWU, *args],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
        env=os.environ | (env or {}),
    )


async def workflow_rows(db: Database, period: str) -> dict[str, list[Any]]:
    """Everything the workflow owns for the period but the flags (which statuses decide)."""
    units = application_unit
    async with db.engine.connect() as connection:
        applications = (
            await connection.execute(sa.select(application).where(application.c.period == period))
        ).all()
        ids = [a.application_id for a in applications]
        unit_rows = await connection.execute(
            sa.select(units)
            .where(units.c.application_id.in_(ids))
            .order_by(units.c.application_id, units.c.unit_code)
        )
        steps = await connection.execute(
            sa.select(step).where(step.c.application_id.in_(ids)).order_by(step.c.step_id)
        )
        return {
            "applications": sorted(map(tuple, applications)),
            "units": [
                (u.application_id, u.unit_code, u.state, u.self_evaluation, u.evidence)
                for u in unit_rows
            ],
            "steps": [tuple(s) for s in steps],
        }


async def lose_the_view(db: Database, period: str) -> None:
    """The view of statuses gone for the period, and the flags with it (a restore from a backup
    taken before they arrived, say)."""
    async with db.engine.begin() as connection:
        await connection.execute(sa.delete(unit_status).where(unit_status.c.period == period))
        await connection.execute(
            sa.update(application_unit)
            .where(application_unit.c.period == period)
            .values(flag_since=None, flag_event_ids=None)
        )


class TestRebuild:
    async def test_restores_the_view_and_the_flags_and_keeps_the_workflow(
        self, dynamic: Applications, status_publisher: StatusPublisher, db: Database
    ) -> None:
        period = "t-dyn-rebuild"
        application_id = await put_application(
            db, period=period, units={VILLAGE: UnitState.awarded, TOWNSHIP: UnitState.submitted}
        )
        lost_village = status(VILLAGE, period, 2, three_no=False)
        statuses = [
            status(VILLAGE, period, 1, three_no=True),
            lost_village,
            status(TOWNSHIP, period, 1, three_no=True),
            status(SIBLING_VILLAGE, period, 1, three_no=False),
        ]
        sent = await status_publisher.publish(*statuses)
        await wait_committed(
            dynamic.settings,  # type: ignore[arg-type]
            sent,
            group=dynamic.settings.consumer_group,
        )
        view = await stored_statuses(db, period)
        workflow = await workflow_rows(db, period)
        await lose_the_view(db, period)

        result = sanwu("applications", "rebuild", "--no-progress")

        assert result.returncode == 0, result.stderr
        assert "rebuilt:" in result.stderr and "units flagged" in result.stderr
        assert await stored_statuses(db, period) == view
        row = await unit_row(db, application_id, VILLAGE)
        assert row.flag_since == lost_village.changed_at
        assert row.flag_event_ids == lost_village.counting_event_ids
        assert (await unit_row(db, application_id, TOWNSHIP)).flag_since is None
        rebuilt = await workflow_rows(db, period)
        assert rebuilt["applications"] == workflow["applications"]
        assert rebuilt["units"] == workflow["units"]
        assert rebuilt["steps"][: len(workflow["steps"])] == workflow["steps"]
        actions = [s["action"] for s in await steps_of(db, application_id)]
        assert actions == ["created", "flagged", "flagged"]  # the flag raised again, recorded

    async def test_keeps_a_newer_row_and_changes_nothing_when_run_again(
        self, dynamic: Applications, status_publisher: StatusPublisher, db: Database
    ) -> None:
        period = "t-dyn-rebuild-again"
        sent = await status_publisher.publish(
            status(VILLAGE, period, 1, three_no=False),
            status(SIBLING_VILLAGE, period, 1, three_no=False),
        )
        await wait_committed(
            dynamic.settings,  # type: ignore[arg-type]
            sent,
            group=dynamic.settings.consumer_group,
        )
        async with db.engine.begin() as connection:  # newer than the topic: kept
            await connection.execute(
                sa.update(unit_status)
                .where(unit_status.c.period == period, unit_status.c.unit_code == VILLAGE)
                .values(version=7, three_no=True, counting_event_ids=[])
            )
        before = await stored_statuses(db, period)

        assert sanwu("applications", "rebuild", "--no-progress").returncode == 0

        assert await stored_statuses(db, period) == before
        assert before[VILLAGE] == (7, True, [])

    def test_without_a_status_topic_says_so_and_fails(self, dynamic: Applications) -> None:
        result = sanwu(
            "applications", "rebuild", "--no-progress", env={"SANWU_TOPIC_PREFIX": "absent-"}
        )

        assert result.returncode == 1
        assert "nothing rebuilt: the status topic absent-unit-status does not exist" in (
            result.stderr
        )
