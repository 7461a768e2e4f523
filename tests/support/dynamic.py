"""The applications service as the dynamic-management tests drive it: the app in-process with
its status consumer and relay; applications put straight into its tables (through its
repository) in the state a test needs; the flags and steps read back."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from services.applications.config import ApplicationsSettings
from services.applications.consumers import StatusConsumer
from services.applications.history import record_step
from services.applications.main import create_app
from services.applications.models import application_unit, step, unit_status
from services.applications.repository import ApplicationsRepository
from services.applications.workflow import Action, ApplicationState, UnitState
from shared.campaign import system_now
from shared.config import Settings
from shared.db import Database
from tests.support.app import serve
from tests.support.reporting import StatusPublisher

COUNTY = "340722000000"


@dataclass
class Applications:
    settings: ApplicationsSettings
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def consumer(self) -> StatusConsumer:
        consumer: StatusConsumer = self.app.state.consumer
        return consumer


@pytest.fixture(scope="session")
def dynamic_settings(settings: Settings) -> ApplicationsSettings:
    return ApplicationsSettings(
        registry_refresh_seconds=0.3, applications_relay_idle_poll_seconds=0.2
    )


@pytest.fixture(scope="session")
async def dynamic(dynamic_settings: ApplicationsSettings) -> AsyncIterator[Applications]:
    """The service with its status consumer running."""
    app = create_app(dynamic_settings)
    async with serve(app, "http://applications") as client:
        yield Applications(dynamic_settings, app, client)


@pytest.fixture(scope="session")
async def status_publisher(
    dynamic_settings: ApplicationsSettings,
) -> AsyncIterator[StatusPublisher]:
    publisher = StatusPublisher(dynamic_settings)  # type: ignore[arg-type]
    await publisher.start()
    yield publisher
    await publisher.stop()


async def put_application(
    db: Database, *, period: str, units: dict[str, UnitState], county: str = COUNTY
) -> UUID:
    """An application of the county for the period whose units are in the states given, as
    the workflow would have left it (with its 'created' step)."""
    application_id = uuid4()
    now = system_now()
    submitted = any(state != UnitState.proposed for state in units.values())
    async with db.session() as session:
        repository = await ApplicationsRepository.from_session(session)
        await repository.lock_steps()
        await repository.add_application(
            application_id=application_id,
            county_code=county,
            period=period,
            units=[(code, f"{code} 自评：全年无越级上访", ["完善接访制度"]) for code in units],
            now=now,
        )
        for code, state in units.items():
            if state != UnitState.proposed:
                await repository.set_unit(application_id, code, state=state)
        if submitted:
            await repository.set_application(
                application_id, state=ApplicationState.submitted, now=now
            )
        await record_step(session, application_id=application_id, action=Action.created, at=now)
    return application_id


@dataclass(frozen=True)
class UnitRow:
    state: str
    flag_since: datetime | None
    flag_event_ids: list[str] | None


async def unit_row(db: Database, application_id: UUID, code: str) -> UnitRow:
    t = application_unit
    async with db.engine.connect() as connection:
        row = (
            await connection.execute(
                sa.select(t.c.state, t.c.flag_since, t.c.flag_event_ids).where(
                    t.c.application_id == application_id, t.c.unit_code == code
                )
            )
        ).one()
    return UnitRow(row.state, row.flag_since, row.flag_event_ids)


async def steps_of(db: Database, application_id: UUID) -> list[dict[str, Any]]:
    t = step
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.select(t.c.action, t.c.unit_code, t.c.key_id, t.c.role, t.c.detail)
            .where(t.c.application_id == application_id)
            .order_by(t.c.step_id)
        )
        return [dict(r._mapping) for r in rows]


async def stored_statuses(db: Database, period: str) -> dict[str, tuple[int, bool, list[str]]]:
    """The service's view for a period: unit code -> (version, three_no, counting events)."""
    t = unit_status
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.select(t.c.unit_code, t.c.version, t.c.three_no, t.c.counting_event_ids).where(
                t.c.period == period
            )
        )
        return {r.unit_code: (r.version, r.three_no, list(r.counting_event_ids)) for r in rows}
