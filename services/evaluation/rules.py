"""The rule table of docs/domain.md section 3 applied to one event at one unit. Pure: no I/O.

`criteria_met(event, level, rule_table)` says under which criteria an event counts against a
unit of that level. Whether the event belongs to the unit at all (attribution, period,
voided) is decided elsewhere. Work records (meetings, ratings) meet no criterion: they are
evidence beside the status, never against it.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntFlag

from shared.campaign import LevelRules
from shared.events import (
    EventType,
    Incident,
    PetitionVisit,
    PublicOpinion,
    Rating,
    RatingSource,
    SatisfactionRating,
    WorkRecord,
)
from shared.levels import Destination, Level

CountingEvent = PetitionVisit | Incident | PublicOpinion
AppliedEvent = CountingEvent | WorkRecord  # every event that is not a correction
WORK_RECORD_TYPES = frozenset({EventType.screening_meeting, EventType.satisfaction_rating})


class Criterion(IntFlag):
    """The criteria an event can meet, as bits (stored as one small integer per unit)."""

    skip_level = 1  # A. 越级上访 (含涉法涉诉)
    non_reception_site = 2  # A'. 非接待场所有关人员
    collective = 4  # B. 集体上访
    incident = 8  # C. 极端恶性事件 / 舆论负面炒作

    @classmethod
    def none(cls) -> "Criterion":
        return NOTHING


NOTHING = Criterion(0)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the rules read from a counting event."""

    type: EventType
    destination: Destination | None = None
    headcount: int = 0
    skip_level: bool = False
    non_reception_site: bool = False
    rating: Rating | None = None
    source: RatingSource | None = None

    @property
    def is_visit(self) -> bool:
        return self.type is EventType.petition_visit

    @property
    def is_work_record(self) -> bool:
        return self.type in WORK_RECORD_TYPES


def facts_of(event: AppliedEvent | Facts) -> Facts:
    if isinstance(event, Facts):
        return event
    if isinstance(event, PetitionVisit):
        return Facts(
            type=EventType.petition_visit,
            destination=event.destination_level,
            headcount=event.headcount,
            skip_level=event.skip_level,
            non_reception_site=event.non_reception_site,
        )
    if isinstance(event, SatisfactionRating):
        return Facts(type=EventType.satisfaction_rating, rating=event.rating, source=event.source)
    return Facts(type=EventType(event.type))


def criteria_met(
    event: AppliedEvent | Facts, level: Level, rule_table: Mapping[Level, LevelRules]
) -> Criterion:
    """The criteria the event meets at a unit of this level; none for levels without rules,
    and none for work records."""
    rules = rule_table.get(level)
    facts = facts_of(event)
    if rules is None or facts.is_work_record:
        return NOTHING
    if not facts.is_visit:
        return Criterion.incident if rules.incidents else NOTHING
    met = 0
    # law_related visits are judged like any other visit: the flag plays no part here.
    if facts.skip_level and facts.destination in rules.skip_level_destinations:
        met |= Criterion.skip_level.value
    if facts.non_reception_site and rules.non_reception_site:
        met |= Criterion.non_reception_site.value
    collective = rules.collective
    if facts.destination in collective.destinations and collective.met_by(facts.headcount):
        met |= Criterion.collective.value
    return Criterion(met)


def people_of(facts: Facts) -> int:
    """The 人次 an event adds to each criterion it meets: its headcount for a visit, none for
    incidents and public opinion."""
    return facts.headcount if facts.is_visit else 0
