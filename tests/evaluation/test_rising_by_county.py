"""The rising step of a live batch works one county at a time: a batch of visits all over the
nation reads a county's visits, finds its units' onsets, and lets them go before it reads the
next county's (evaluation's memory at national size depends on it)."""

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

from services.evaluation.warnings.finder import Expected, WarningFinder
from services.evaluation.warnings.records import VisitMoment
from services.evaluation.warnings.repository import WarningRepository
from services.evaluation.warnings.rising import RisingWarnings, Span

T = datetime.fromisoformat("2019-08-01T10:00:00+08:00")
REACH = timedelta(days=90)
A, B = "470101000000", "470102000000"


def county_of(code: str) -> str:
    return code[:6] + "000000"


class Log:
    def __init__(self) -> None:
        self.steps: list[tuple[Any, ...]] = []


class ReadingCounties:
    """A repository that notes each county it is asked for."""

    def __init__(self, log: Log) -> None:
        self.log = log

    async def visit_moments_in_county(
        self, county_code: str, *, after: datetime, until: datetime
    ) -> list[VisitMoment]:
        self.log.steps.append(("read", county_code, after, until))
        return []


class NotingRising(RisingWarnings):
    """Notes the units whose onsets it works out, and when."""

    def __init__(self, log: Log) -> None:
        super().__init__(
            finder=cast(WarningFinder, None),
            chain=lambda code: (),
            keying_unit=county_of,
            reach=REACH,
        )
        self.log = log

    def expected(
        self, moments: Sequence[VisitMoment], spans: Mapping[str, Span]
    ) -> dict[UUID, Expected]:
        self.log.steps.append(("weigh", sorted(spans)))
        return {}


async def test_each_countys_visits_are_read_and_weighed_before_the_next_countys() -> None:
    log = Log()
    spans = {
        "470102100000": (T + timedelta(days=3), T + timedelta(days=40)),
        "470101100201": (T, T + timedelta(days=30)),
        A: (T + timedelta(days=1), T + timedelta(days=50)),
        B: (T + timedelta(days=2), T + timedelta(days=20)),
    }
    rising = NotingRising(log)
    repository = cast(WarningRepository, ReadingCounties(log))

    assert await rising.wanted(repository, spans) == {}

    assert log.steps == [
        ("read", A, T - REACH, T + timedelta(days=50)),
        ("weigh", [A, "470101100201"]),
        ("read", B, T + timedelta(days=2) - REACH, T + timedelta(days=40)),
        ("weigh", [B, "470102100000"]),
    ]
