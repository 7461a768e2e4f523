"""What a counted event's corrections do to it (docs/domain.md section 4), decided in one place:
intake asks it before accepting a correction of an event it knows, evaluation to apply them.

Pure: the caller gives the target's own unit, its corrections and how to tell whether a scope
covers a unit. Corrections are taken in acceptance order (accepted_at, then event id). Each one
is an act of authority over the target, so the sender's scope must cover the unit the target
is attributed to at that point and, for a re-attribution, the new unit; a refused one changes
nothing and later ones are judged as if it had never come. A void is final: whatever comes after
it is refused too (as outside the scope if it is, so that intake answers 403 for it).
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from shared.registry.cache import UnitRegistry

VOIDED = "event_voided"
REATTRIBUTED = "event_reattributed"
CORRECTION_TYPES = frozenset({VOIDED, REATTRIBUTED})

# (sender's scope unit, or None for everywhere; a unit code) -> whether the scope covers it
Covers = Callable[[str | None, str], bool]


class Refusal(StrEnum):
    out_of_scope = "out_of_scope"
    voided = "voided"
    target_is_correction = "target_is_correction"
    unknown_sender = "unknown_sender"


@dataclass(frozen=True, slots=True)
class Correction:
    """One correction of the target, with what is known of its sender."""

    event_id: UUID
    type: str  # VOIDED or REATTRIBUTED
    new_unit_code: str | None
    accepted_at: datetime
    scope_code: str | None  # the sender's scope; None: everywhere (an admin key)
    sender_known: bool = True  # False: no such key (the record was not signed by intake)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Correction":
        """From a row with these columns (a stored correction joined with its sender key)."""
        return cls(**{name: row[name] for name in CORRECTION_FIELDS})


CORRECTION_FIELDS = (
    "event_id",
    "type",
    "new_unit_code",
    "accepted_at",
    "scope_code",
    "sender_known",
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A correction's outcome: applied, or refused with the kind of refusal and why."""

    refusal: Refusal | None = None
    reason: str | None = None

    @property
    def applied(self) -> bool:
        return self.refusal is None


APPLIED = Verdict()


@dataclass(frozen=True, slots=True)
class Resolution:
    unit_code: str  # where the target is attributed after its corrections
    voided: bool
    verdicts: dict[UUID, Verdict]


def acceptance_order(correction: Correction) -> tuple[datetime, UUID]:
    return (correction.accepted_at, correction.event_id)


def resolve(unit_code: str, corrections: Iterable[Correction], *, covers: Covers) -> Resolution:
    """The target's attribution and whether it is voided, given its own unit and all its
    corrections, with the verdict on each."""
    voided = False
    verdicts: dict[UUID, Verdict] = {}
    for correction in sorted(corrections, key=acceptance_order):
        verdict = _verdict(correction, unit_code=unit_code, voided=voided, covers=covers)
        verdicts[correction.event_id] = verdict
        if not verdict.applied:
            continue
        if correction.type == VOIDED:
            voided = True
        elif correction.new_unit_code is not None:
            unit_code = correction.new_unit_code
    return Resolution(unit_code, voided, verdicts)


def refuse_all(corrections: Iterable[Correction], refusal: Refusal) -> dict[UUID, Verdict]:
    """Verdicts for corrections refused whatever their order (their target is a correction)."""
    verdict = Verdict(refusal, REASONS[refusal])
    return {correction.event_id: verdict for correction in corrections}


# No unit code in a reason: the sender of a refused correction may not see where the event lies.
REASONS = {
    Refusal.out_of_scope: "the event is attributed to a unit outside the sender's scope",
    Refusal.voided: "the event was voided",
    Refusal.target_is_correction: "the target is a correction: only counted events are corrected",
    Refusal.unknown_sender: "the key that sent it is unknown",
}


def _verdict(correction: Correction, *, unit_code: str, voided: bool, covers: Covers) -> Verdict:
    if not correction.sender_known:
        return Verdict(Refusal.unknown_sender, REASONS[Refusal.unknown_sender])
    scope = correction.scope_code
    if not covers(scope, unit_code):
        return Verdict(Refusal.out_of_scope, REASONS[Refusal.out_of_scope])
    new_unit = correction.new_unit_code
    if correction.type == REATTRIBUTED and new_unit is not None and not covers(scope, new_unit):
        return Verdict(Refusal.out_of_scope, "the new unit is outside the sender's scope")
    if voided:
        return Verdict(Refusal.voided, REASONS[Refusal.voided])
    return APPLIED


def covers_in(registry: UnitRegistry) -> Covers:
    """Scope coverage by the registry's tree as it is now."""

    def covers(scope_code: str | None, unit_code: str) -> bool:
        return scope_code is None or registry.is_within(unit_code, scope_code)

    return covers
