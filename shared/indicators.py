"""Work-record indicators of a unit for a period (docs/domain.md section 7), as published on the
indicator topic.

Evaluation produces one message per change, keyed `unit_code:period` like a status, with the
slots in which the unit's own meetings fell and the ratings of its subtree; reporting keeps the
latest version per key and works out required, missed and open slots as of the day it answers.
"""

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.cadence import Cadence
from shared.events import Rating, RatingSource
from shared.levels import Level
from shared.status import status_key


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkRecordRules(_Strict):
    """Campaign data for work records; the defaults are the plan's."""

    cadence: dict[Level, Cadence] = Field(
        default_factory=lambda: {
            Level.county: Cadence.month,
            Level.township: Cadence.half_month,
            Level.village: Cadence.week,
        }
    )
    satisfied_ratings: frozenset[Rating] = frozenset({Rating.satisfied, Rating.basically_satisfied})


class RatingCounts(_Strict):
    satisfied: int = 0
    basically_satisfied: int = 0
    dissatisfied: int = 0

    @property
    def total(self) -> int:
        return self.satisfied + self.basically_satisfied + self.dissatisfied

    def rate(self, satisfied_ratings: frozenset[Rating]) -> float | None:
        """群众满意率: the share of ratings that count as satisfied; none when nothing was rated."""
        if not self.total:
            return None
        return sum(getattr(self, str(r)) for r in satisfied_ratings) / self.total


class UnitIndicators(_Strict):
    schema_version: int = 1
    unit_code: str
    period: str
    meetings_held: list[date] = Field(
        description="first days of the slots (of the unit's level) in which the unit's own "
        "meetings fell, sorted; for `rolling`, those in the window when published"
    )
    ratings: dict[RatingSource, RatingCounts] = Field(
        description="ratings of the unit and its descendants in the period, per source"
    )
    changed_at: datetime
    version: int

    @property
    def key(self) -> bytes:
        return status_key(self.unit_code, self.period)

    def all_ratings(self) -> RatingCounts:
        return RatingCounts(
            satisfied=sum(c.satisfied for c in self.ratings.values()),
            basically_satisfied=sum(c.basically_satisfied for c in self.ratings.values()),
            dissatisfied=sum(c.dissatisfied for c in self.ratings.values()),
        )
