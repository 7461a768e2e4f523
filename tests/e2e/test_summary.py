"""A county's summary after desks post a scripted set of events through intake, checked against
figures worked out by hand for 枞阳县 (20 townships of 15 villages; targets: the county itself,
≥ 40% of townships, ≥ 50% of villages). The script walks the boundaries of docs/domain.md section 3
and ends with voids that make units clean again."""

from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import COUNTY, TOWNSHIP
from tests.e2e.conftest import at
from tests.support import events
from tests.support.pipeline import Pipeline
from tests.support.reporting import demo_townships, demo_villages

PERIOD = "t-e2e-summary"  # phase 1 only
REVERSED = "t-e2e-summary-reversed"  # phase 1, then phase 2


def figures(total: int, three_no: int, target: float, met: bool) -> dict[str, Any]:
    return {
        "total": total,
        "three_no": three_no,
        "ratio": three_no / total,
        "target": target,
        "target_met": met,
    }


def counts(**values: int) -> dict[str, int]:
    return {"skip_level": 0, "non_reception_site": 0, "collective": 0, "incident": 0} | values


def without_counts(level_figures: dict[str, Any]) -> dict[str, Any]:
    # The work-record figures (cadence_kept, ratings, satisfaction_rate) are checked in
    # tests/reporting/test_indicators.py.
    left_out = ("batches", "people", "cadence_kept", "ratings", "satisfaction_rate")
    return {k: v for k, v in level_figures.items() if k not in left_out}


async def summary(pipeline: Pipeline, period: str) -> dict[str, Any]:
    response = await pipeline.reporting.get(
        "/v1/reports/summary", pipeline.keys["county_reader"], root=COUNTY, period=period
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def status(pipeline: Pipeline, code: str, period: str) -> dict[str, Any]:
    response = await pipeline.reporting.get(
        f"/v1/units/{code}/status", pipeline.keys["county_reader"], period=period
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@dataclass
class Boundaries:
    """Phase 1: the boundaries of docs/domain.md section 3, each in a township of its own. 150 of
    300 villages (townships 0-9) and 12 of 20 townships (0-11) are then not three-no; the
    county is."""

    townships: list[str]
    five_to_city: dict[str, Any]  # marks the village and the township
    skip_to_province: dict[str, Any]  # marks village and township, not the county
    fifty_to_city: dict[str, Any]  # not the county either
    four_to_city: dict[str, Any]  # marks nothing
    six_to_county: dict[tuple[int, int], dict[str, Any]]  # the village only
    township_group: dict[str, Any]  # attributed to township 10 itself

    def village(self, township: int, index: int) -> str:
        return demo_villages(self.townships[township])[index]


async def post_boundaries(pipeline: Pipeline, period: str) -> Boundaries:
    townships = demo_townships()
    assert len(townships) == 20 and townships[0] == TOWNSHIP
    when = at(period)

    def village(township: int, index: int) -> str:
        return demo_villages(townships[township])[index]

    def visit(unit: str, destination: str, headcount: int, **flags: bool) -> dict[str, Any]:
        return events.visit(
            unit, destination=destination, headcount=headcount, occurred_at=when, **flags
        )

    scene = Boundaries(
        townships=townships,
        five_to_city=visit(village(0, 0), "city", 5),
        skip_to_province=visit(village(1, 0), "province", 1, skip_level=True),
        fifty_to_city=visit(village(2, 0), "city", 50),
        four_to_city=visit(village(12, 0), "city", 4),
        # Six to the county mark only the village: the other 14 villages of townships 0-9.
        six_to_county={
            (t, i): visit(village(t, i), "county", 6) for t in range(10) for i in range(1, 15)
        },
        township_group=visit(townships[10], "city", 5),
    )
    six_to_city = [visit(village(t, 0), "city", 6) for t in range(3, 10)]
    township_skip = visit(townships[11], "province", 1, skip_level=True)
    # The township desk posts for its own township, the county desk for the rest.
    own = [scene.five_to_city, *(e for (t, _), e in scene.six_to_county.items() if t == 0)]
    others = [
        scene.skip_to_province,
        scene.fifty_to_city,
        *six_to_city,
        scene.four_to_city,
        *(e for (t, _), e in scene.six_to_county.items() if t != 0),
        scene.township_group,
        township_skip,
    ]
    await pipeline.post(pipeline.keys["township_desk"], *own)
    await pipeline.post(pipeline.keys["county_desk"], *others)
    await pipeline.drained()
    return scene


@dataclass
class Reversals:
    """Phase 2, on top of phase 1 in a period of its own: 51 people to the city mark the
    county (and their village and township), two more villages and a township are marked, and
    two voids make a village and township 10 clean again. Every target is then missed."""

    before: Boundaries
    fifty_one: dict[str, Any]


async def post_reversals(pipeline: Pipeline, period: str) -> Reversals:
    before = await post_boundaries(pipeline, period)
    when = at(period)

    def visit(unit: str, destination: str, headcount: int, **flags: bool) -> dict[str, Any]:
        return events.visit(
            unit, destination=destination, headcount=headcount, occurred_at=when, **flags
        )

    fifty_one = visit(before.village(12, 1), "city", 51)
    await pipeline.post(
        pipeline.keys["county_desk"],
        fifty_one,
        visit(before.village(12, 2), "county", 6),
        visit(before.village(13, 0), "province", 2, skip_level=True),
        events.voided(before.township_group),
    )
    await pipeline.post(pipeline.keys["township_desk"], events.voided(before.six_to_county[(0, 1)]))
    await pipeline.drained()
    return Reversals(before=before, fifty_one=fifty_one)


@pytest.fixture(scope="module")
async def boundaries(pipeline: Pipeline) -> Boundaries:
    return await post_boundaries(pipeline, PERIOD)


@pytest.fixture(scope="module")
async def reversals(pipeline: Pipeline) -> Reversals:
    return await post_reversals(pipeline, REVERSED)


# --- phase 1: the targets met --------------------------------------------------------------


async def test_every_target_is_met_two_of_them_exactly(
    pipeline: Pipeline, boundaries: Boundaries
) -> None:
    levels = (await summary(pipeline, PERIOD))["levels"]
    assert without_counts(levels["county"]) == figures(1, 1, 1.0, True)
    assert without_counts(levels["township"]) == figures(20, 8, 0.4, True)
    assert without_counts(levels["village"]) == figures(300, 150, 0.5, True)


async def test_batches_and_people_are_counted_per_criterion_and_level(
    pipeline: Pipeline, boundaries: Boundaries
) -> None:
    levels = (await summary(pipeline, PERIOD))["levels"]
    # Villages: 140 six to the county, 7 six to the city, 5 and 50 to the city: 149 batches of
    # 937 people; one skip-level visit of one person.
    assert levels["village"]["batches"] == counts(collective=149, skip_level=1)
    assert levels["village"]["people"] == counts(collective=937, skip_level=1)
    # Townships: 5, 50 and 7 x 6 to the city through villages, 5 at township 10 itself; the
    # skip-level visits of township 1's village and of township 11.
    assert levels["township"]["batches"] == counts(collective=10, skip_level=2)
    assert levels["township"]["people"] == counts(collective=102, skip_level=2)
    assert levels["county"]["batches"] == counts()


async def test_each_township_has_its_own_figures(
    pipeline: Pipeline, boundaries: Boundaries
) -> None:
    townships = boundaries.townships
    children = {
        c["unit"]["code"]: c["levels"] for c in (await summary(pipeline, PERIOD))["children"]
    }
    assert list(children) == townships
    assert without_counts(children[townships[0]]["township"]) == figures(1, 0, 0.4, False)
    assert without_counts(children[townships[0]]["village"]) == figures(15, 0, 0.5, False)
    assert without_counts(children[townships[10]]["township"]) == figures(1, 0, 0.4, False)
    assert without_counts(children[townships[10]]["village"]) == figures(15, 15, 0.5, True)
    assert without_counts(children[townships[12]]["township"]) == figures(1, 1, 0.4, True)
    assert without_counts(children[townships[12]]["village"]) == figures(15, 15, 0.5, True)


async def test_five_to_the_city_marks_the_village_and_its_township(
    pipeline: Pipeline, boundaries: Boundaries
) -> None:
    five = await status(pipeline, boundaries.village(0, 0), PERIOD)
    expected = [boundaries.five_to_city["event_id"]]
    assert five["three_no"] is False and five["counting_event_ids"] == expected
    assert five["counts"] == counts(collective=1) and five["people"] == counts(collective=5)
    township = await status(pipeline, boundaries.townships[0], PERIOD)
    assert township["counting_event_ids"] == expected


async def test_one_skip_level_person_to_the_province_marks_the_village_and_the_township(
    pipeline: Pipeline, boundaries: Boundaries
) -> None:
    skip = await status(pipeline, boundaries.village(1, 0), PERIOD)
    assert skip["counts"] == counts(skip_level=1) and skip["people"] == counts(skip_level=1)
    township = await status(pipeline, boundaries.townships[1], PERIOD)
    assert township["counts"] == counts(skip_level=1)


async def test_four_to_the_city_marks_nothing(pipeline: Pipeline, boundaries: Boundaries) -> None:
    four = await status(pipeline, boundaries.village(12, 0), PERIOD)
    assert four["three_no"] is True and four["version"] == 0
    assert (await status(pipeline, boundaries.townships[12], PERIOD))["version"] == 0


async def test_fifty_to_the_city_leaves_the_county_three_no(
    pipeline: Pipeline, boundaries: Boundaries
) -> None:
    county = await status(pipeline, COUNTY, PERIOD)
    assert county["three_no"] is True and county["version"] == 0


# --- phase 2: the targets missed -----------------------------------------------------------


async def test_every_target_is_missed_once_the_county_is_marked(
    pipeline: Pipeline, reversals: Reversals
) -> None:
    levels = (await summary(pipeline, REVERSED))["levels"]
    assert without_counts(levels["county"]) == figures(1, 0, 1.0, False)
    assert without_counts(levels["township"]) == figures(20, 7, 0.4, False)
    assert without_counts(levels["village"]) == figures(300, 148, 0.5, False)


async def test_voided_events_leave_the_batches_and_people(
    pipeline: Pipeline, reversals: Reversals
) -> None:
    levels = (await summary(pipeline, REVERSED))["levels"]
    assert levels["village"]["batches"] == counts(collective=150, skip_level=2)
    assert levels["village"]["people"] == counts(collective=988, skip_level=3)
    assert levels["township"]["batches"] == counts(collective=10, skip_level=3)
    assert levels["township"]["people"] == counts(collective=148, skip_level=4)
    assert levels["county"]["batches"] == counts(collective=1)
    assert levels["county"]["people"] == counts(collective=51)


async def test_each_township_follows_the_reversals(
    pipeline: Pipeline, reversals: Reversals
) -> None:
    townships = reversals.before.townships
    report = await summary(pipeline, REVERSED)
    children = {c["unit"]["code"]: c["levels"] for c in report["children"]}
    assert without_counts(children[townships[0]]["village"]) == figures(15, 1, 0.5, False)
    assert without_counts(children[townships[10]]["township"]) == figures(1, 1, 0.4, True)
    assert without_counts(children[townships[12]]["township"]) == figures(1, 0, 0.4, False)
    assert without_counts(children[townships[12]]["village"]) == figures(15, 13, 0.5, True)


async def test_fifty_one_to_the_city_marks_the_county(
    pipeline: Pipeline, reversals: Reversals
) -> None:
    county = await status(pipeline, COUNTY, REVERSED)
    assert county["three_no"] is False
    assert county["counting_event_ids"] == [reversals.fifty_one["event_id"]]


async def test_a_void_makes_a_village_and_a_township_three_no_again(
    pipeline: Pipeline, reversals: Reversals
) -> None:
    before = reversals.before
    for cleaned in (before.village(0, 1), before.townships[10]):
        again = await status(pipeline, cleaned, REVERSED)
        assert again["three_no"] is True and again["counting_event_ids"] == []
        assert again["counts"] == counts() and again["version"] == 2
