"""The boundaries of docs/domain.md section 3 as data: one event each, and the criteria it
meets at a village, a township and a county under the plan's rule table. The rule-engine tests
and the end-to-end tests both go through this table."""

from dataclasses import dataclass, field
from typing import Any

from services.evaluation.rules import Criterion
from shared.levels import Level
from tests.support import events

NONE = Criterion.none()
SKIP = Criterion.skip_level
SITE = Criterion.non_reception_site
GROUP = Criterion.collective
INCIDENT = Criterion.incident


def public_opinion(unit_code: str, *, occurred_at: str) -> dict[str, Any]:
    return {
        "event_id": events.new_id(),
        "type": "public_opinion",
        "unit_code": unit_code,
        "occurred_at": occurred_at,
        "platform": "微博",
        "summary": "舆论负面炒作",
    }


@dataclass(frozen=True)
class Boundary:
    name: str
    kind: str  # petition_visit, incident or public_opinion
    village: Criterion
    township: Criterion
    county: Criterion
    destination: str = "city"
    headcount: int = 1
    flags: dict[str, bool] = field(default_factory=dict)
    attributed_to: Level = Level.village

    def expected(self, level: Level) -> Criterion:
        return {Level.village: self.village, Level.township: self.township}.get(level, self.county)

    def event(self, unit_code: str, occurred_at: str) -> dict[str, Any]:
        if self.kind == "incident":
            return events.incident(unit_code, occurred_at=occurred_at)
        if self.kind == "public_opinion":
            return public_opinion(unit_code, occurred_at=occurred_at)
        return events.visit(
            unit_code,
            destination=self.destination,
            headcount=self.headcount,
            occurred_at=occurred_at,
            **self.flags,
        )

    @property
    def people(self) -> int:
        return self.headcount if self.kind == "petition_visit" else 0

    def __str__(self) -> str:
        return self.name


SKIP_FLAG = {"skip_level": True}

BOUNDARIES: list[Boundary] = [
    # B. collective visits: 5 to the county marks a village, 5 to the city a township,
    # more than 50 to the city a county.
    Boundary("4 to the city", "petition_visit", NONE, NONE, NONE, "city", 4),
    Boundary("5 to the city", "petition_visit", GROUP, GROUP, NONE, "city", 5),
    Boundary("4 to the county", "petition_visit", NONE, NONE, NONE, "county", 4),
    Boundary("5 to the county", "petition_visit", GROUP, NONE, NONE, "county", 5),
    Boundary("6 to the county", "petition_visit", GROUP, NONE, NONE, "county", 6),
    Boundary("5 to the township", "petition_visit", NONE, NONE, NONE, "township", 5),
    Boundary("50 to the city", "petition_visit", GROUP, GROUP, NONE, "city", 50),
    Boundary("51 to the city", "petition_visit", GROUP, GROUP, GROUP, "city", 51),
    Boundary("51 to the county", "petition_visit", GROUP, NONE, NONE, "county", 51),
    Boundary("51 to the province", "petition_visit", GROUP, GROUP, GROUP, "province", 51),
    # A. skip-level visits: city and above for a village, province and above for a township,
    # national for a county.
    Boundary(
        "skip-level to the county", "petition_visit", NONE, NONE, NONE, "county", 1, SKIP_FLAG
    ),
    Boundary("skip-level to the city", "petition_visit", SKIP, NONE, NONE, "city", 1, SKIP_FLAG),
    Boundary(
        "skip-level to the province", "petition_visit", SKIP, SKIP, NONE, "province", 1, SKIP_FLAG
    ),
    Boundary(
        "skip-level to national", "petition_visit", SKIP, SKIP, SKIP, "national", 1, SKIP_FLAG
    ),
    Boundary(
        "law-related skip-level to the province",
        "petition_visit",
        SKIP,
        SKIP,
        NONE,
        "province",
        1,
        {"skip_level": True, "law_related": True},
    ),
    Boundary(
        "one person to national, not skip-level", "petition_visit", NONE, NONE, NONE, "national"
    ),
    # A'. non-reception sites count at every level.
    Boundary(
        "non-reception site",
        "petition_visit",
        SITE,
        SITE,
        SITE,
        "national",
        1,
        {"non_reception_site": True},
    ),
    Boundary(
        "6 skip-level at a non-reception site",
        "petition_visit",
        SKIP | SITE | GROUP,
        SKIP | SITE | GROUP,
        SKIP | SITE,
        "national",
        6,
        {"skip_level": True, "non_reception_site": True},
    ),
    # C. incidents and public opinion count at every level.
    Boundary("incident", "incident", INCIDENT, INCIDENT, INCIDENT),
    Boundary("public opinion", "public_opinion", INCIDENT, INCIDENT, INCIDENT),
    # Matters attributed to a township or the county count from there up.
    Boundary(
        "5 to the city, attributed to a township",
        "petition_visit",
        GROUP,
        GROUP,
        NONE,
        "city",
        5,
        attributed_to=Level.township,
    ),
    Boundary(
        "skip-level to national, attributed to the county",
        "petition_visit",
        SKIP,
        SKIP,
        SKIP,
        "national",
        1,
        SKIP_FLAG,
        attributed_to=Level.county,
    ),
]
