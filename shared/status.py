"""The three-no status of a unit for a period, as published on the status topic.

Evaluation produces it (one message per change, keyed `unit_code:period`, full status as value);
reporting keeps the latest version per key.
"""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

ROLLING = "rolling"


class CriterionCounts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    skip_level: int = 0
    non_reception_site: int = 0
    collective: int = 0
    incident: int = Field(0, description="incident and public_opinion events together")

    @property
    def total(self) -> int:
        return self.skip_level + self.non_reception_site + self.collective + self.incident


class UnitStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = 1
    unit_code: str
    period: str
    three_no: bool
    counts: CriterionCounts = Field(description="batches (批次) per criterion")
    people: CriterionCounts = Field(description="people (人次) per criterion; visits only")
    counting_event_ids: list[str]
    changed_at: datetime
    version: int

    @property
    def key(self) -> bytes:
        return status_key(self.unit_code, self.period)


def status_key(unit_code: str, period: str) -> bytes:
    return f"{unit_code}:{period}".encode()
