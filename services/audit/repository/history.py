"""The history rows the log's leaves are made from, as each service keeps them: intake's
journal, applications' steps (with their application's county and period), the cases service's
dispute steps and case steps (each with the facts of its dispute or case that never change) and
the key audit.
Read by `sanwu audit verify` as the migrator, which may read every schema; streamed in
batches, each row made into the leaf it must have in the log."""

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from services.audit.leaves import (
    CaseStepFacts,
    DisputeStepFacts,
    KeyOperation,
    Leaf,
    LeafKind,
    application_step_leaf,
    case_step_leaf,
    dispute_step_leaf,
    event_leaf,
    key_operation_leaf,
)
from shared.application_steps import ApplicationStep
from shared.repository import Repository

JOURNAL_SQL = "SELECT event_id, payload::text AS payload, accepted_at, key_id FROM intake.journal"
STEPS_SQL = """
    SELECT s.step_id, s.application_id, a.county_code, a.period, s.unit_code, s.action,
           s.key_id, s.role, s.scope_code, s.reason, s.detail::text AS detail, s.at
    FROM applications.step s JOIN applications.application a USING (application_id)
"""
# The dispute as it stands now: only the columns no step changes.
DISPUTE_STEPS_SQL = """
    SELECT s.step_id, s.dispute_id, d.event_id, d.unit_code, d.grounds, d.proposed_unit,
           d.duplicate_of, d.statement, s.version, s.action, s.at, s.key_id, s.role,
           s.scope_code, s.reason, s.detail::text AS detail
    FROM cases.dispute_step s JOIN cases.dispute d USING (dispute_id)
"""
# The case as it stands now: only the columns no step changes (not its owner, state, reviews,
# rating or version).
CASE_STEPS_SQL = """
    SELECT s.step_id, s.case_id, c.unit_code, c.first_receiver, c.received_at, c.channel,
           c.category, c.petitioner_ref, c.headcount, c.event_ids, c.repeat_of, c.registered_at,
           s.version, s.action, s.at, s.recorded_at, s.key_id, s.role, s.scope_code, s.body,
           s.reason, s.detail::text AS detail
    FROM cases.case_step s JOIN cases.case c USING (case_id)
"""
KEY_AUDIT_SQL = "SELECT id, at, action, key_id, role, scope_code, actor FROM access.key_audit"
BATCH = 5000


def _event(row: Any) -> Leaf:
    return event_leaf(
        event_id=row["event_id"],
        payload=orjson.loads(row["payload"]),
        accepted_at=row["accepted_at"],
        key_id=row["key_id"],
    )


def _step(row: Any) -> Leaf:
    fields = dict(row)
    fields["detail"] = orjson.loads(fields["detail"])
    return application_step_leaf(ApplicationStep.model_validate(fields))


def _dispute_step(row: Any) -> Leaf:
    fields = dict(row)
    fields["detail"] = orjson.loads(fields["detail"])
    for code in ("unit_code", "proposed_unit", "scope_code"):  # CHAR(12)
        if fields[code] is not None:
            fields[code] = fields[code].rstrip()
    return dispute_step_leaf(DisputeStepFacts(**fields))


def _case_step(row: Any) -> Leaf:
    fields = dict(row)
    fields["detail"] = orjson.loads(fields["detail"])
    for code in ("unit_code", "first_receiver", "scope_code"):  # CHAR(12)
        if fields[code] is not None:
            fields[code] = fields[code].rstrip()
    return case_step_leaf(CaseStepFacts(**fields))


def _key_operation(row: Any) -> Leaf:
    return key_operation_leaf(
        KeyOperation(
            audit_id=row["id"],
            at=row["at"],
            action=row["action"],
            key_id=row["key_id"],
            role=row["role"],
            scope_code=row["scope_code"],
            actor=row["actor"],
        )
    )


SOURCES: dict[LeafKind, tuple[str, str, Callable[[Any], Leaf]]] = {
    LeafKind.event: ("intake.journal", JOURNAL_SQL, _event),
    LeafKind.application_step: ("applications.step", STEPS_SQL, _step),
    LeafKind.key_operation: ("access.key_audit", KEY_AUDIT_SQL, _key_operation),
    LeafKind.dispute_step: ("cases.dispute_step", DISPUTE_STEPS_SQL, _dispute_step),
    LeafKind.case_step: ("cases.case_step", CASE_STEPS_SQL, _case_step),
}


class HistoryRepository(Repository):
    """On a connection of its own, inside a transaction the caller opened (a cursor needs
    one): every table read in the same snapshot when it is REPEATABLE READ."""

    async def leaves(self, kind: LeafKind) -> AsyncIterator[Leaf]:
        _, sql, make = SOURCES[kind]
        async for row in self.connection.cursor(sql, prefetch=BATCH):
            yield make(row)


def table_of(kind: LeafKind) -> str:
    return SOURCES[kind][0]
