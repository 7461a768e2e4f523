"""All of the applications service's SQL."""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from services.applications.models import application, application_unit, step, unit_status
from services.applications.records import (
    Application,
    AppliedUnit,
    StatusNow,
    Step,
    Title,
)
from services.applications.workflow import CLOSED, Action, ApplicationState, UnitState
from shared.locks import LockName, lock_key
from shared.repository import Repository

STEPS_LOCK = lock_key(LockName.applications_steps)
STATUSES_LOCK = lock_key(LockName.applications_statuses)
_a, _u, _s = application, application_unit, step
_STEP_COLUMNS = (
    _s.c.step_id,
    _s.c.application_id,
    _a.c.county_code,
    _a.c.period,
    _s.c.unit_code,
    _s.c.action,
    _s.c.key_id,
    _s.c.role,
    _s.c.scope_code,
    _s.c.reason,
    _s.c.detail,
    _s.c.at,
)
_LIVE = _u.c.state.not_in([s.value for s in CLOSED])


def _step(row: Any) -> Step:
    values = dict(row._mapping)
    values["action"] = Action(values["action"])
    return Step(**values)


def _unit(row: Any) -> AppliedUnit:
    return AppliedUnit(
        unit_code=row.unit_code,
        self_evaluation=row.self_evaluation,
        rectifications=list(row.rectifications),
        state=UnitState(row.state),
        evidence=row.evidence,
        decision_reason=row.decision_reason,
        flag_since=row.flag_since,
        flag_event_ids=list(row.flag_event_ids) if row.flag_event_ids is not None else None,
    )


class ApplicationsRepository(Repository):
    async def lock_statuses(self) -> None:
        """Holds off the status consumer (which takes it before the steps lock), so that the
        statuses read stay the latest until the transaction ends: a unit found eligible cannot
        lose its status unflagged while it is being submitted."""
        await self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(STATUSES_LOCK)))

    async def lock_steps(self) -> None:
        """Serialises the transactions that record steps (see LockName.applications_steps)."""
        await self.session.execute(sa.select(sa.func.pg_advisory_xact_lock(STEPS_LOCK)))

    # --- statuses ---------------------------------------------------------------------------

    async def statuses(self, codes: Sequence[str], period: str) -> dict[str, StatusNow]:
        t = unit_status
        rows = await self.session.execute(
            sa.select(t).where(t.c.unit_code.in_(list(codes)), t.c.period == period)
        )
        return {
            r.unit_code: StatusNow(
                unit_code=r.unit_code,
                period=r.period,
                three_no=r.three_no,
                counting_event_ids=list(r.counting_event_ids),
                version=r.version,
                changed_at=r.changed_at,
                counts=dict(r.counts),
                people=dict(r.people),
            )
            for r in rows
        }

    # --- applications -----------------------------------------------------------------------

    async def live_units(self, codes: Sequence[str], period: str) -> dict[str, UUID]:
        """The live application each of these units is in for the period, if any."""
        rows = await self.session.execute(
            sa.select(_u.c.unit_code, _u.c.application_id).where(
                _u.c.unit_code.in_(list(codes)), _u.c.period == period, _LIVE
            )
        )
        return {r.unit_code: r.application_id for r in rows}

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
            _a.insert().values(
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
            _u.insert(),
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
        row = (
            await self.session.execute(sa.select(_a).where(_a.c.application_id == application_id))
        ).first()
        if row is None:
            return None
        return (await self._with_units([row]))[0]

    async def find(self, *, counties: Sequence[str], period: str | None) -> list[Application]:
        query = sa.select(_a).where(_a.c.county_code.in_(list(counties)))
        if period is not None:
            query = query.where(_a.c.period == period)
        rows = (await self.session.execute(query.order_by(_a.c.created_at))).all()
        return await self._with_units(rows)

    async def _with_units(self, rows: Sequence[Any]) -> list[Application]:
        ids = [r.application_id for r in rows]
        units: dict[UUID, list[AppliedUnit]] = {i: [] for i in ids}
        if ids:
            found = await self.session.execute(
                sa.select(_u).where(_u.c.application_id.in_(ids)).order_by(_u.c.unit_code)
            )
            for u in found:
                units[u.application_id].append(_unit(u))
        return [
            Application(
                application_id=r.application_id,
                county_code=r.county_code,
                period=r.period,
                state=ApplicationState(r.state),
                version=r.version,
                created_at=r.created_at,
                updated_at=r.updated_at,
                units=units[r.application_id],
            )
            for r in rows
        ]

    async def counties(self) -> list[str]:
        """Every county that has applied (for filtering by a root through the registry)."""
        rows = await self.session.execute(sa.select(_a.c.county_code).distinct())
        return [r.county_code for r in rows]

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
            _u.update()
            .where(_u.c.application_id == application_id, _u.c.unit_code == unit_code)
            .values(**values)
        )

    async def set_application(
        self, application_id: UUID, *, state: ApplicationState, now: datetime
    ) -> int:
        """The new state, one version up; returns the new version."""
        result = await self.session.execute(
            _a.update()
            .where(_a.c.application_id == application_id)
            .values(state=state.value, version=_a.c.version + 1, updated_at=now)
            .returning(_a.c.version)
        )
        return int(result.scalar_one())

    # --- steps ------------------------------------------------------------------------------

    async def add_step(
        self,
        *,
        application_id: UUID,
        unit_code: str | None,
        action: Action,
        actor: tuple[str | None, str | None, str | None],
        reason: str | None,
        detail: dict[str, Any],
        at: datetime,
    ) -> int:
        key_id, role, scope_code = actor
        result = await self.session.execute(
            _s.insert()
            .values(
                application_id=application_id,
                unit_code=unit_code,
                action=action.value,
                key_id=key_id,
                role=role,
                scope_code=scope_code,
                reason=reason,
                detail=json.loads(json.dumps(detail, default=str)),
                at=at,
            )
            .returning(_s.c.step_id)
        )
        return int(result.scalar_one())

    async def steps_of(self, application_id: UUID) -> list[Step]:
        rows = await self.session.execute(
            sa.select(*_STEP_COLUMNS)
            .join(_a, _a.c.application_id == _s.c.application_id)
            .where(_s.c.application_id == application_id)
            .order_by(_s.c.step_id)
        )
        return [_step(r) for r in rows]

    async def step(self, step_id: int) -> Step:
        row = (
            await self.session.execute(
                sa.select(*_STEP_COLUMNS)
                .join(_a, _a.c.application_id == _s.c.application_id)
                .where(_s.c.step_id == step_id)
            )
        ).one()
        return _step(row)

    async def feed(self, *, counties: Sequence[str], after: int, limit: int) -> list[Step]:
        rows = await self.session.execute(
            sa.select(*_STEP_COLUMNS)
            .join(_a, _a.c.application_id == _s.c.application_id)
            .where(_s.c.step_id > after, _a.c.county_code.in_(list(counties)))
            .order_by(_s.c.step_id)
            .limit(limit)
        )
        return [_step(r) for r in rows]

    # --- titles -----------------------------------------------------------------------------

    async def titles(self, *, period: str, unit_code: str | None = None) -> list[Title]:
        held = (UnitState.awarded.value, UnitState.revoked.value)
        query = (
            sa.select(
                _u.c.unit_code,
                _u.c.period,
                _u.c.application_id,
                _a.c.county_code,
                _a.c.version,
                _u.c.state,
                _u.c.decision_reason,
                _u.c.flag_since,
                _u.c.flag_event_ids,
            )
            .join(_a, _a.c.application_id == _u.c.application_id)
            .where(_u.c.period == period, _u.c.state.in_(held))
            .order_by(_u.c.unit_code, _a.c.created_at)
        )
        if unit_code is not None:
            query = query.where(_u.c.unit_code == unit_code)
        rows = await self.session.execute(query)
        return [
            Title(
                unit_code=r.unit_code,
                period=r.period,
                application_id=r.application_id,
                county_code=r.county_code,
                version=r.version,
                state=UnitState(r.state),
                reason=r.decision_reason,
                flag_since=r.flag_since,
                flag_event_ids=list(r.flag_event_ids) if r.flag_event_ids is not None else None,
            )
            for r in rows
        ]
