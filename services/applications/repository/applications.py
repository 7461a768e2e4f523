"""Applications and their units: a county's draft, the units' states and decisions, the titles
they hold, and the steps lock every change of an application takes first."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from services.applications.models import ApplicationRow, ApplicationUnitRow
from services.applications.records import Application, AppliedUnit, Title
from services.applications.repository.common import FRESH, UNSYNCED, objects
from services.applications.workflow import CLOSED, ApplicationState, UnitState
from shared.locks import LockName, lock_key
from shared.repository import Repository

STEPS_LOCK = lock_key(LockName.applications_steps)
# The units awarded the title, and those whose title was revoked.
TITLED = (UnitState.awarded.value, UnitState.revoked.value)
_A, _U = ApplicationRow, ApplicationUnitRow
_LIVE = col(_U.state).not_in([s.value for s in CLOSED])
_SAME_APPLICATION = col(_A.application_id) == col(_U.application_id)


def applied_unit(row: ApplicationUnitRow) -> AppliedUnit:
    return AppliedUnit(
        unit_code=row.unit_code,
        self_evaluation=row.self_evaluation,
        rectifications=list(row.rectifications),
        state=UnitState(row.state),
        evidence=row.evidence,
        decision_reason=row.decision_reason,
        flag_since=row.flag_since,
        flag_event_ids=_listed(row.flag_event_ids),
    )


def title(unit: ApplicationUnitRow, application: ApplicationRow) -> Title:
    return Title(
        unit_code=unit.unit_code,
        period=unit.period,
        application_id=unit.application_id,
        county_code=application.county_code,
        version=application.version,
        state=UnitState(unit.state),
        reason=unit.decision_reason,
        flag_since=unit.flag_since,
        flag_event_ids=_listed(unit.flag_event_ids),
    )


def _listed(ids: Sequence[str] | None) -> list[str] | None:
    return None if ids is None else list(ids)


class ApplicationsRepository(Repository):
    async def lock_steps(self) -> None:
        """Serialises the transactions that record steps (see LockName.applications_steps)."""
        await self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(STEPS_LOCK)))

    async def live_units(self, codes: Sequence[str], period: str) -> dict[str, UUID]:
        """The live application each of these units is in for the period, if any."""
        found = await objects(
            self.session,
            select(_U).where(col(_U.unit_code).in_(list(codes)), col(_U.period) == period, _LIVE),
        )
        return {u.unit_code: u.application_id for u in found}

    async def add_application(
        self,
        *,
        application_id: UUID,
        county_code: str,
        period: str,
        units: Sequence[tuple[str, str, list[str]]],
        now: datetime,
    ) -> None:
        """A draft with its proposed units: (code, self-evaluation, rectifications) each."""
        await self.session.execute(
            sa.insert(_A).values(
                application_id=application_id,
                county_code=county_code,
                period=period,
                state=ApplicationState.draft.value,
                version=1,
                created_at=now,
                updated_at=now,
            )
        )
        await self.session.execute(
            sa.insert(_U),
            [
                {
                    "application_id": application_id,
                    "unit_code": code,
                    "period": period,
                    "self_evaluation": text,
                    "rectifications": rectifications,
                    "state": UnitState.proposed.value,
                }
                for code, text, rectifications in units
            ],
        )

    async def get(self, application_id: UUID) -> Application | None:
        found = await self._with_units(select(_A).where(col(_A.application_id) == application_id))
        return found[0] if found else None

    async def find(self, *, counties: Sequence[str], period: str | None) -> list[Application]:
        query = select(_A).where(col(_A.county_code).in_(list(counties)))
        if period is not None:
            query = query.where(col(_A.period) == period)
        return await self._with_units(query.order_by(col(_A.created_at)))

    async def _with_units(self, query: SelectOfScalar[ApplicationRow]) -> list[Application]:
        applications = await objects(self.session, query)
        units: dict[UUID, list[AppliedUnit]] = {a.application_id: [] for a in applications}
        if units:
            found = await objects(
                self.session,
                select(_U)
                .where(col(_U.application_id).in_(list(units)))
                .order_by(col(_U.unit_code)),
            )
            for unit in found:
                units[unit.application_id].append(applied_unit(unit))
        return [
            Application(
                application_id=a.application_id,
                county_code=a.county_code,
                period=a.period,
                state=ApplicationState(a.state),
                version=a.version,
                created_at=a.created_at,
                updated_at=a.updated_at,
                units=units[a.application_id],
            )
            for a in applications
        ]

    async def counties(self) -> list[str]:
        """Every county that has applied (for filtering by a root through the registry)."""
        found = await self.session.scalars(select(_A.county_code).distinct())
        return list(found)

    async def set_unit(
        self,
        application_id: UUID,
        unit_code: str,
        *,
        state: UnitState,
        reason: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        values: dict[str, Any] = {"state": state.value}
        if reason is not None:
            values["decision_reason"] = reason
        if evidence is not None:
            values["evidence"] = evidence
        await self.session.execute(
            sa.update(_U)
            .where(col(_U.application_id) == application_id, col(_U.unit_code) == unit_code)
            .values(**values)
            .execution_options(**UNSYNCED)
        )

    async def set_application(
        self, application_id: UUID, *, state: ApplicationState, now: datetime
    ) -> int:
        """The new state, one version up; returns the new version."""
        result = await self.session.execute(
            sa.update(_A)
            .where(col(_A.application_id) == application_id)
            .values(state=state.value, version=col(_A.version) + 1, updated_at=now)
            .returning(col(_A.version))
            .execution_options(**UNSYNCED)
        )
        return int(result.scalar_one())

    async def titles(self, *, period: str, unit_code: str | None = None) -> list[Title]:
        """The units awarded the title for the period, or whose title was revoked."""
        query = (
            select(_U, _A)
            .join(_A, _SAME_APPLICATION)
            .where(col(_U.period) == period, col(_U.state).in_(TITLED))
            .order_by(col(_U.unit_code), col(_A.created_at))
        )
        if unit_code is not None:
            query = query.where(col(_U.unit_code) == unit_code)
        found = await self.session.execute(query.execution_options(**FRESH))
        return [title(unit, application) for unit, application in found]
