"""The rule engine on its own: every boundary of docs/domain.md section 3 at every level, and the
rule table read as data (thresholds, comparisons, destination sets, switches)."""

from pathlib import Path

import pytest

from services.evaluation.rules import Criterion, Facts, criteria_met, facts_of, people_of
from shared import campaign
from shared.campaign import CollectiveRule, Comparison, LevelRules
from shared.events import EventType, event_adapter
from shared.levels import CAMPAIGN_LEVELS, Destination, Level
from tests.evaluation.cases import BOUNDARIES, Boundary, public_opinion
from tests.support import events

ROOT = Path(__file__).resolve().parents[2]
PLAN = campaign.load(ROOT / "campaign" / "zongyang-2018.yaml").rules


def event_of(boundary: Boundary) -> Facts:
    payload = boundary.event("340722100201", "2019-06-03T09:30:00+08:00")
    return facts_of(event_adapter.validate_python(payload))  # type: ignore[arg-type]


@pytest.mark.parametrize("boundary", BOUNDARIES, ids=str)
@pytest.mark.parametrize("level", CAMPAIGN_LEVELS, ids=str)
def test_plan_boundary(boundary: Boundary, level: Level) -> None:
    assert criteria_met(event_of(boundary), level, PLAN) == boundary.expected(level)


class TestCollective:
    @pytest.mark.parametrize(
        ("headcount", "level", "met"),
        [
            (4, Level.township, False),
            (5, Level.township, True),
            (50, Level.county, False),
            (51, Level.county, True),
        ],
    )
    def test_thresholds_to_the_city(self, headcount: int, level: Level, met: bool) -> None:
        visit = Facts(EventType.petition_visit, Destination.city, headcount)
        assert (Criterion.collective in criteria_met(visit, level, PLAN)) is met

    def test_comparison_is_read_from_the_table(self) -> None:
        exclusive = _village_rules(
            collective=CollectiveRule(
                threshold=5, comparison=Comparison.gt, destinations=frozenset({Destination.county})
            )
        )
        visit = Facts(EventType.petition_visit, Destination.county, 5)
        assert criteria_met(visit, Level.village, exclusive) == Criterion.none()
        assert (
            criteria_met(
                Facts(EventType.petition_visit, Destination.county, 6), Level.village, exclusive
            )
            == Criterion.collective
        )

    def test_destination_set_can_mean_the_city_only(self) -> None:
        city_only = _village_rules(
            collective=CollectiveRule(
                threshold=5, comparison=Comparison.ge, destinations=frozenset({Destination.city})
            )
        )
        to_province = Facts(EventType.petition_visit, Destination.province, 20)
        assert criteria_met(to_province, Level.village, city_only) == Criterion.none()


class TestSwitches:
    def test_non_reception_sites_can_be_left_out(self) -> None:
        rules = _village_rules(non_reception_site=False)
        visit = Facts(EventType.petition_visit, Destination.national, 1, non_reception_site=True)
        assert criteria_met(visit, Level.village, rules) == Criterion.none()

    def test_incidents_can_be_left_out(self) -> None:
        rules = _village_rules(incidents=False)
        assert criteria_met(Facts(EventType.incident), Level.village, rules) == Criterion.none()

    def test_levels_without_rules_meet_nothing(self) -> None:
        visit = Facts(EventType.petition_visit, Destination.national, 500, skip_level=True)
        assert criteria_met(visit, Level.city, PLAN) == Criterion.none()


class TestFacts:
    def test_law_related_visits_count_like_any_other(self) -> None:
        plain = events.visit("340722100201", destination="city", skip_level=True)
        law = plain | {"law_related": True}
        for level in CAMPAIGN_LEVELS:
            assert criteria_met(
                event_adapter.validate_python(law),
                level,
                PLAN,  # type: ignore[arg-type]
            ) == criteria_met(event_adapter.validate_python(plain), level, PLAN)  # type: ignore[arg-type]

    def test_people_are_the_headcount_of_visits_only(self) -> None:
        visit = event_adapter.validate_python(events.visit("340722100201", headcount=7))
        opinion = event_adapter.validate_python(
            public_opinion("340722100201", occurred_at="2019-01-01T00:00:00+08:00")
        )
        assert people_of(facts_of(visit)) == 7  # type: ignore[arg-type]
        assert people_of(facts_of(opinion)) == 0  # type: ignore[arg-type]
        assert criteria_met(opinion, Level.county, PLAN) == Criterion.incident  # type: ignore[arg-type]


def _village_rules(**changes: object) -> dict[Level, LevelRules]:
    return dict(PLAN) | {Level.village: PLAN[Level.village].model_copy(update=changes)}
