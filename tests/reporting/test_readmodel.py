"""The read model's arithmetic and the cursors, without any I/O."""

from fractions import Fraction

import pytest

from services.reporting.readmodel import CountDeltas, Figures, StoredStatus
from services.reporting.summaries import target_met
from shared import cursors
from shared.campaign import system_now
from shared.errors import InvalidInput
from shared.levels import Level

PATH = ("340000000000", "340700000000", "340722000000", "340722100000", "340722100201")
MOVED = ("340000000000", "340700000000", "340722000000", "340722101000", "340722100201")


def stored(*, three_no: bool, path: tuple[str, ...] = PATH, version: int = 1) -> StoredStatus:
    return StoredStatus(
        unit_code=PATH[-1],
        period="2018",
        level=Level.village,
        path=path,
        three_no=three_no,
        batches=(0, 0, 1, 0) if not three_no else (0, 0, 0, 0),
        people=(0, 0, 6, 0) if not three_no else (0, 0, 0, 0),
        counting_event_ids=(),
        changed_at=system_now(),
        version=version,
    )


def test_a_first_change_counts_at_every_ancestor_and_a_clean_one_cancels_it() -> None:
    deltas = CountDeltas()
    dirty = stored(three_no=False)
    deltas.replace(None, dirty)
    assert deltas.nonzero() == {
        (code, "2018", Level.village): Figures(1, (0, 0, 1, 0), (0, 0, 6, 0)) for code in PATH
    }

    deltas.replace(dirty, stored(three_no=True, version=2))
    assert deltas.nonzero() == {}


def test_a_moved_unit_leaves_its_old_township_and_joins_the_new_one() -> None:
    deltas = CountDeltas()
    before = stored(three_no=False)
    deltas.replace(before, before.moved(Level.village, MOVED))
    assert deltas.nonzero() == {
        ("340722100000", "2018", Level.village): Figures(-1, (0, 0, -1, 0), (0, 0, -6, 0)),
        ("340722101000", "2018", Level.village): Figures(1, (0, 0, 1, 0), (0, 0, 6, 0)),
    }


@pytest.mark.parametrize(
    ("three_no", "total", "target", "met"),
    [
        (8, 20, "0.4", True),
        (7, 20, "0.4", False),
        (150, 300, "0.5", True),
        (149, 300, "0.5", False),
        (1, 1, "1.0", True),
        (0, 1, "1.0", False),
        (0, 0, "0.5", None),
    ],
)
def test_targets_compare_exactly(three_no: int, total: int, target: str, met: bool | None) -> None:
    assert target_met(three_no, total, Fraction(target)) is met


def test_cursors_round_trip_and_refuse_what_they_did_not_make() -> None:
    assert cursors.decode("f1", cursors.encode("f1", "42"), field="since") == "42"
    for bad in ("", "!!!", cursors.encode("e1", "42"), cursors.encode("f1", "")):
        with pytest.raises(InvalidInput) as raised:
            cursors.decode("f1", bad, field="since")
        assert raised.value.errors == [
            {"field": "since", "message": "not a valid cursor", "type": "cursor"}
        ]
