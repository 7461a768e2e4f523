"""The early warnings of cases' clocks: a duty due within 3 days raises `case_due_soon`, one
past its last day `case_overdue`, on the unit the case is with; the step that does the duty
clears it (and an overdue one replaces the due-soon one). Each case's warnings are reconciled
with its clocks in the transaction of each of its steps, and by a watch that goes over the
open cases as the days pass. Every raise and clear is a new version of the warning, published
to the warning topic through an outbox."""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import structlog

from services.cases.cases.clocks import Clock, ClockState
from services.cases.cases.repository import CaseRow
from services.cases.models import warning_outbox
from shared.early_warning import EarlyWarning, WarningKind
from shared.outbox import OutboxMessage, OutboxRepository
from shared.repository import Repository

log = structlog.get_logger(__name__)

# Ids of case warnings: the same case, clock and kind always give the same id.
NAMESPACE = uuid.UUID("6f1c3c52-3d6a-4c55-9f0b-2f7a3b8c1e11")

WARNINGS_SQL = """
SELECT warning_id, kind, unit_code, raised_at, detail, version
FROM cases.case_warning WHERE case_id = $1 AND cleared_at IS NULL
"""
RAISE_SQL = """
INSERT INTO cases.case_warning
    (warning_id, case_id, kind, unit_code, raised_at, cleared_at, detail, version)
VALUES ($1, $2, $3, $4, $5, NULL, $6::jsonb, 1)
ON CONFLICT (warning_id) DO NOTHING
RETURNING version
"""
CLEAR_SQL = """
UPDATE cases.case_warning SET cleared_at = $2, version = version + 1
WHERE warning_id = $1 AND cleared_at IS NULL
RETURNING version
"""


@dataclass(frozen=True, slots=True)
class Wanted:
    warning_id: UUID
    kind: WarningKind
    clock: Clock


def wanted(case: CaseRow, clocks: Sequence[Clock], today: date) -> dict[UUID, Wanted]:
    """The warnings the case's clocks call for today."""
    found: dict[UUID, Wanted] = {}
    seen: dict[str, int] = {}
    for clock in clocks:
        nth = seen[clock.name] = seen.get(clock.name, 0) + 1
        if clock.state is ClockState.overdue:
            kind = WarningKind.case_overdue
        elif clock.due_soon(today):
            kind = WarningKind.case_due_soon
        else:
            continue
        warning_id = uuid.uuid5(NAMESPACE, f"{case.case_id}/{clock.name}/{nth}/{kind}")
        found[warning_id] = Wanted(warning_id, kind, clock)
    return found


class WarningRepository(Repository):
    async def reconcile(
        self,
        case: CaseRow,
        clocks: Sequence[Clock],
        *,
        today: date,
        now: datetime,
        new: bool = False,
    ) -> int:
        """Raise the warnings the clocks call for and clear the others; the changes made.
        `new`: a case just registered, which has none to clear."""
        called = wanted(case, clocks, today)
        if new and not called:
            return 0
        rows = [] if new else await self.connection.fetch(WARNINGS_SQL, case.case_id)
        raised = {row["warning_id"]: row for row in rows}
        changes = []
        for warning_id, want in called.items():
            if warning_id not in raised:
                changes += await self._raise(case, want, now)
        for warning_id, row in raised.items():
            if warning_id not in called:
                changes += await self._clear(case, row, now)
        if changes:
            await OutboxRepository(self.session, warning_outbox).add(changes)
        return len(changes)

    async def _raise(self, case: CaseRow, want: Wanted, now: datetime) -> list[OutboxMessage]:
        detail = {
            "case_id": str(case.case_id),
            "clock": want.clock.name.value,
            "due": want.clock.due.isoformat() if want.clock.due else None,
            "body": case.owner_body,
        }
        version = await self.connection.fetchval(
            RAISE_SQL,
            want.warning_id,
            case.case_id,
            want.kind.value,
            case.owner_unit,
            now,
            _json(detail),
        )
        if version is None:  # raised and cleared before: a clock does not warn twice
            return []
        warning = EarlyWarning(
            warning_id=want.warning_id,
            kind=want.kind,
            unit_code=case.owner_unit,
            raised_at=now,
            event_ids=[],
            detail=detail,
            version=version,
        )
        return [_message(warning)]

    async def _clear(self, case: CaseRow, row: Any, now: datetime) -> list[OutboxMessage]:
        found = dict(row)
        version = await self.connection.fetchval(CLEAR_SQL, found["warning_id"], now)
        if version is None:
            return []
        warning = EarlyWarning(
            warning_id=found["warning_id"],
            kind=WarningKind(found["kind"]),
            unit_code=found["unit_code"].strip(),
            raised_at=found["raised_at"],
            cleared_at=now,
            event_ids=[],
            detail=_loaded(found["detail"]),
            version=version,
        )
        return [_message(warning)]


def _message(warning: EarlyWarning) -> OutboxMessage:
    return OutboxMessage(
        key=warning.key,
        value=warning.model_dump_json().encode(),
        headers={"type": "early_warning"},
    )


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False)


def _loaded(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)
