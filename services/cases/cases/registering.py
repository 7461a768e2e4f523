"""Registering cases at the desk (一站式接待): each registration checked, its petitioner kept
only as the keyed hash, and a matter that has a case already linked to it as a repeat."""

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import orjson

from services.cases.cases.history import record_step
from services.cases.cases.repository import CaseRepository, CaseRow, CaseStepRow
from shared.access.models import Role
from shared.access.service import Principal
from shared.case_steps import Action, CaseState, Channel
from shared.errors import DomainError, InvalidInput, OutOfScope, StateConflict
from shared.keyed_hash import KeyedHash
from shared.registry.cache import UnitRegistry

Warn = Callable[[CaseRepository, CaseRow, datetime, list[CaseStepRow]], Awaitable[None]]


@dataclass(frozen=True)
class Registration:
    case_id: UUID
    unit_code: str
    received_at: datetime
    channel: Channel
    category: str
    petitioner_ref: str  # as the desk wrote it; kept only as its keyed hash
    headcount: int
    summary: str
    event_ids: list[UUID] = field(default_factory=list)


@dataclass(frozen=True)
class Registered:
    """One registration of a batch: its state, a duplicate, or why it was refused."""

    case_id: UUID
    state: CaseState | None = None
    duplicate: bool = False
    error: DomainError | None = None


class Registrar:
    def __init__(self, *, registry: UnitRegistry, petitioner_hash: KeyedHash, warn: Warn) -> None:
        self.registry = registry
        self.petitioner_hash = petitioner_hash
        self.warn = warn  # the case's warnings, once registered

    async def batch(
        self,
        cases: CaseRepository,
        principal: Principal,
        registrations: Sequence[Registration],
        now: datetime,
    ) -> list[Registered]:
        known = await cases.contents([r.case_id for r in registrations])
        return [
            await self._one_of_batch(cases, principal, registration, known, now)
            for registration in registrations
        ]

    async def _one_of_batch(
        self,
        cases: CaseRepository,
        principal: Principal,
        registration: Registration,
        known: dict[UUID, str],
        now: datetime,
    ) -> Registered:
        case_id = registration.case_id
        try:
            await self.check(principal, registration, now)
            content_hash = self.content_hash(registration)
            if case_id in known:
                if known[case_id] != content_hash:
                    raise StateConflict(f"case_id {case_id} names another registration")
                return Registered(case_id, duplicate=True)
            row, _ = await self.registered(cases, principal, registration, now, take_turn=False)
        except DomainError as refused:
            return Registered(case_id, error=refused)
        known[case_id] = content_hash
        return Registered(case_id, state=CaseState(row.state))

    async def registered(
        self,
        cases: CaseRepository,
        principal: Principal,
        registration: Registration,
        now: datetime,
        *,
        take_turn: bool,
    ) -> tuple[CaseRow, CaseStepRow]:
        """The case inserted with its summary and its first step (a repeat when its matter
        has a case already), its warnings raised."""
        ref = self.petitioner_hash(registration.petitioner_ref)
        await cases.lock_matter(ref, registration.category)
        matter = await cases.matter(ref, registration.category)
        state, repeat_of = CaseState.registered, None
        if matter is not None:
            repeat_of = matter[0]
            state = CaseState.refused if matter[1] == CaseState.closed else CaseState.repeat
        inserted = await cases.insert(
            self._row(principal, registration, ref, state, repeat_of, now)
        )
        if inserted is None:  # registered meanwhile under the same id
            raise StateConflict(f"case_id {registration.case_id} was just registered")
        await cases.add_summary(inserted.case_id, registration.summary)
        if take_turn:
            await cases.take_turn()
        step = await record_step(
            cases,
            inserted,
            principal,
            action=Action.registered,
            at=registration.received_at,
            recorded_at=now,
            detail={"repeat_of": str(repeat_of)} if repeat_of else {},
        )
        await self.warn(cases, inserted, now, [step])
        return inserted, step

    def _row(
        self,
        principal: Principal,
        registration: Registration,
        ref: str,
        state: CaseState,
        repeat_of: UUID | None,
        now: datetime,
    ) -> CaseRow:
        receiver = principal.scope_code or registration.unit_code
        return CaseRow(
            case_id=registration.case_id,
            unit_code=registration.unit_code,
            first_receiver=receiver,
            owner_unit=receiver,
            owner_body=None,
            received_at=registration.received_at,
            channel=registration.channel.value,
            category=registration.category,
            petitioner_ref=ref,
            headcount=registration.headcount,
            event_ids=registration.event_ids,
            state=state.value,
            repeat_of=repeat_of,
            reviews=0,
            rating=None,
            content_hash=self.content_hash(registration),
            version=1,
            registered_at=now,
            changed_at=now,
        )

    async def check(self, principal: Principal, registration: Registration, now: datetime) -> None:
        if principal.role not in (Role.desk, Role.admin):
            raise OutOfScope(f"a {principal.role} key may not register cases", reason="role")
        if await self.registry.get(registration.unit_code) is None:
            raise InvalidInput(
                f"unknown unit {registration.unit_code}", errors=[{"field": "unit_code"}]
            )
        if not principal.covers(self.registry, registration.unit_code):
            raise OutOfScope(f"{registration.unit_code} is outside the key's scope")
        if registration.received_at > now:
            raise InvalidInput("received_at is in the future", errors=[{"field": "received_at"}])

    def content_hash(self, registration: Registration) -> str:
        ref = self.petitioner_hash(registration.petitioner_ref)
        content = {
            "unit_code": registration.unit_code,
            "received_at": registration.received_at.timestamp(),
            "channel": registration.channel.value,
            "category": registration.category,
            "petitioner_ref": ref,
            "headcount": registration.headcount,
            "summary": registration.summary,
            "event_ids": sorted(str(e) for e in registration.event_ids),
        }
        return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
