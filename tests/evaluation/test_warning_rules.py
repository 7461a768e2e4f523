"""The warning rules without I/O (services/evaluation/warnings/finder.py): a rising spell raises one
warning, not one per visit; ids are the same for the same kind, unit and cause; the visits as
they stand override the visits as reported."""

import uuid
from datetime import datetime, timedelta

from services.evaluation.warnings.finder import Visit, WarningFinder, expected, warning_id
from shared.campaign import CollectiveRule, Comparison, LevelRules
from shared.early_warning import WarningKind, WarningRules
from shared.levels import Destination, Level

VILLAGE = "470199100201"
T = datetime.fromisoformat("2019-08-01T10:00:00+08:00")
RULES = {
    Level.village: LevelRules(
        skip_level_destinations=frozenset({Destination.city}),
        non_reception_site=True,
        collective=CollectiveRule(
            threshold=5, comparison=Comparison.ge, destinations=frozenset({Destination.county})
        ),
        incidents=True,
    )
}


def finder() -> WarningFinder:
    return WarningFinder(
        rules=WarningRules(),
        level_rules=RULES,
        chain=lambda code: [(code, Level.village)],
        county_of=lambda code: code[:6],
    )


def visits_at(*days: float, destination: Destination = Destination.township) -> list[Visit]:
    visits = [
        Visit(uuid.uuid4(), VILLAGE, T + timedelta(days=d), destination, 1, None) for d in days
    ]
    return sorted(visits, key=lambda v: v.order)


def test_a_rising_spell_raises_once_and_again_only_after_30_quiet_days() -> None:
    spell = [0, 1, 2, 3, 4, 5, 6, 7, 20, 35]  # rising from the fifth visit up to day 20
    later = [75, 76, 77, 78, 79, 80, 81]  # 7 >= 2 x 10 / 3: rising again on day 81
    visits = visits_at(*spell, *later)

    found = finder().rising(VILLAGE, visits)

    assert [f.cause_at for f in found] == [T + timedelta(days=4), T + timedelta(days=81)]
    assert found[0].event_ids == tuple(sorted(v.event_id for v in visits[:5]))


def test_onsets_between_since_and_until_only() -> None:
    visits = visits_at(0, 1, 2, 3, 4, 75, 76, 77, 78, 79)

    found = finder().rising(VILLAGE, visits, since=T + timedelta(days=50))

    assert [f.cause_at for f in found] == [T + timedelta(days=79)]


def test_ids_follow_kind_unit_and_cause() -> None:
    (visit,) = visits_at(0, destination=Destination.county)
    first = finder().near_threshold(visit)
    again = finder().near_threshold(visit)
    near_at_four = Visit(visit.event_id, VILLAGE, T, Destination.county, 4, None)

    assert first == again == []  # one person: not within the margin
    (found,) = finder().near_threshold(near_at_four)
    assert found.warning_id == warning_id(WarningKind.near_threshold, VILLAGE, visit.event_id)
    assert found.warning_id != warning_id(WarningKind.rising, VILLAGE, visit.event_id)


def test_an_id_is_derived_from_kind_unit_and_cause_the_same_in_every_release() -> None:
    cause = uuid.UUID(int=7)
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "urn:sanwu:early-warning")

    found = warning_id(WarningKind.near_threshold, VILLAGE, cause)

    assert found == uuid.uuid5(namespace, f"near_threshold:{VILLAGE}:{cause}")
    assert found == uuid.UUID("ee5d4f3d-e0c3-5596-a5ad-a6a4447b0a92")


def test_the_visits_as_they_stand_decide_what_stays_raised() -> None:
    as_reported = finder().rising(VILLAGE, visits_at(0, 1, 2, 3, 4))
    as_standing = finder().rising(VILLAGE, visits_at(0, 1, 2, 3, 4, 5)[1:])

    wanted = expected(as_reported, as_standing)

    assert {e.found.warning_id: e.active for e in wanted.values()} == {
        as_reported[0].warning_id: False,
        as_standing[0].warning_id: True,
    }
