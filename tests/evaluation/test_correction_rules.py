"""`shared.corrections.resolve`, the one decision intake and evaluation both take on a target's
corrections (docs/domain.md section 4), without any service."""

import uuid
from datetime import UTC, datetime, timedelta

from shared.corrections import (
    REATTRIBUTED,
    VOIDED,
    Correction,
    Refusal,
    refuse_all,
    resolve,
)

COUNTY = "C"
TOWNSHIP_A, TOWNSHIP_B = "CA", "CB"
VILLAGE_A, VILLAGE_A2, VILLAGE_B = "CA1", "CA2", "CB1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def covers(scope: str | None, unit: str) -> bool:
    """Codes spell their ancestors here: a scope covers the units its code starts."""
    return scope is None or unit.startswith(scope)


def correction(
    kind: str,
    *,
    at: int,
    scope: str | None = COUNTY,
    new_unit: str | None = None,
    known: bool = True,
    event_id: uuid.UUID | None = None,
) -> Correction:
    return Correction(
        event_id=event_id or uuid.uuid4(),
        type=kind,
        new_unit_code=new_unit,
        accepted_at=T0 + timedelta(microseconds=at),
        scope_code=scope,
        sender_known=known,
    )


def test_without_corrections_the_event_stays_where_it_was_sent() -> None:
    resolution = resolve(VILLAGE_A, [], covers=covers)
    assert (resolution.unit_code, resolution.voided, resolution.verdicts) == (VILLAGE_A, False, {})


def test_the_reattribution_accepted_last_wins_whatever_the_ids_and_the_order_given() -> None:
    first = correction(REATTRIBUTED, at=1, new_unit=VILLAGE_B, event_id=uuid.UUID(int=2))
    last = correction(REATTRIBUTED, at=2, new_unit=VILLAGE_A2, event_id=uuid.UUID(int=1))

    for given in ([first, last], [last, first]):
        resolution = resolve(VILLAGE_A, given, covers=covers)
        assert resolution.unit_code == VILLAGE_A2
        assert all(v.applied for v in resolution.verdicts.values())


def test_the_same_moment_is_ordered_by_id() -> None:
    low = correction(REATTRIBUTED, at=1, new_unit=VILLAGE_B, event_id=uuid.UUID(int=1))
    high = correction(REATTRIBUTED, at=1, new_unit=VILLAGE_A2, event_id=uuid.UUID(int=2))
    assert resolve(VILLAGE_A, [high, low], covers=covers).unit_code == VILLAGE_A2


def test_the_scope_must_cover_where_the_event_is_at_that_moment() -> None:
    away = correction(REATTRIBUTED, at=1, new_unit=VILLAGE_B)
    too_late = correction(VOIDED, at=2, scope=TOWNSHIP_A)

    resolution = resolve(VILLAGE_A, [away, too_late], covers=covers)

    assert (resolution.unit_code, resolution.voided) == (VILLAGE_B, False)
    verdict = resolution.verdicts[too_late.event_id]
    assert verdict.refusal is Refusal.out_of_scope


def test_a_reattribution_needs_the_new_unit_in_scope_too() -> None:
    out = correction(REATTRIBUTED, at=1, scope=TOWNSHIP_A, new_unit=VILLAGE_B)
    resolution = resolve(VILLAGE_A, [out], covers=covers)
    assert resolution.unit_code == VILLAGE_A
    assert resolution.verdicts[out.event_id].refusal is Refusal.out_of_scope


def test_a_refused_correction_is_skipped_when_judging_the_later_ones() -> None:
    refused = correction(REATTRIBUTED, at=1, scope=TOWNSHIP_B, new_unit=VILLAGE_B)
    mine = correction(VOIDED, at=2, scope=TOWNSHIP_A)

    resolution = resolve(VILLAGE_A, [refused, mine], covers=covers)

    assert resolution.voided and resolution.unit_code == VILLAGE_A
    assert resolution.verdicts[mine.event_id].applied


def test_a_void_is_final() -> None:
    void = correction(VOIDED, at=1)
    move = correction(REATTRIBUTED, at=2, new_unit=VILLAGE_B)
    again = correction(VOIDED, at=3)

    resolution = resolve(VILLAGE_A, [move, again, void], covers=covers)

    assert (resolution.unit_code, resolution.voided) == (VILLAGE_A, True)
    assert resolution.verdicts[void.event_id].applied
    for later in (move, again):
        assert resolution.verdicts[later.event_id].refusal is Refusal.voided


def test_after_a_void_an_outsider_is_refused_as_out_of_scope() -> None:
    void = correction(VOIDED, at=1)
    outsider = correction(VOIDED, at=2, scope=TOWNSHIP_B)
    resolution = resolve(VILLAGE_A, [void, outsider], covers=covers)
    assert resolution.verdicts[outsider.event_id].refusal is Refusal.out_of_scope


def test_an_out_of_scope_refusal_names_no_unit() -> None:
    outsider = correction(VOIDED, at=1, scope=TOWNSHIP_B)
    mover = correction(REATTRIBUTED, at=2, scope=TOWNSHIP_A, new_unit=VILLAGE_B)
    verdicts = resolve(VILLAGE_A, [outsider, mover], covers=covers).verdicts
    for refused in (outsider, mover):
        reason = verdicts[refused.event_id].reason
        assert verdicts[refused.event_id].refusal is Refusal.out_of_scope
        assert all(code not in reason for code in (VILLAGE_A, VILLAGE_B, TOWNSHIP_A, TOWNSHIP_B))


def test_an_unknown_sender_and_an_admin() -> None:
    forged = correction(VOIDED, at=1, known=False)
    admin = correction(REATTRIBUTED, at=2, scope=None, new_unit=VILLAGE_B)

    resolution = resolve(VILLAGE_A, [forged, admin], covers=covers)

    assert resolution.verdicts[forged.event_id].refusal is Refusal.unknown_sender
    assert (resolution.unit_code, resolution.voided) == (VILLAGE_B, False)


def test_corrections_of_a_correction_are_all_refused() -> None:
    both = [correction(VOIDED, at=1), correction(REATTRIBUTED, at=2, new_unit=VILLAGE_B)]
    verdicts = refuse_all(both, Refusal.target_is_correction)
    assert {v.refusal for v in verdicts.values()} == {Refusal.target_is_correction}
    assert set(verdicts) == {c.event_id for c in both}
