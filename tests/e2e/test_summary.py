"""A county's summary after desks post a scripted set of events through intake, checked against
figures worked out by hand for 枞阳县 (20 townships of 15 villages; targets: the county itself,
≥ 40% of townships, ≥ 50% of villages). The script walks the boundaries of domain.md section 3
and ends with voids that make units clean again."""

from typing import Any

from tests.conftest import COUNTY, TOWNSHIP
from tests.e2e.conftest import at
from tests.support import events
from tests.support.pipeline import Pipeline
from tests.support.reporting import demo_townships, demo_villages

PERIOD = "t-e2e-summary"
WHEN = at(PERIOD)


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
    return {k: v for k, v in level_figures.items() if k not in ("batches", "people")}


def visit(unit: str, destination: str, headcount: int, **flags: bool) -> dict[str, Any]:
    return events.visit(
        unit, destination=destination, headcount=headcount, occurred_at=WHEN, **flags
    )


async def summary(pipeline: Pipeline) -> dict[str, Any]:
    response = await pipeline.reporting.get(
        "/v1/reports/summary", pipeline.keys["county_reader"], root=COUNTY, period=PERIOD
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def status(pipeline: Pipeline, code: str) -> dict[str, Any]:
    response = await pipeline.reporting.get(
        f"/v1/units/{code}/status", pipeline.keys["county_reader"], period=PERIOD
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_county_summary_meets_the_targets_exactly_then_misses_them(
    pipeline: Pipeline,
) -> None:
    townships = demo_townships()
    assert len(townships) == 20 and townships[0] == TOWNSHIP

    def village(township: int, index: int) -> str:
        return demo_villages(townships[township])[index]

    # Phase 1. The boundaries, each in a township of its own:
    five_to_city = visit(village(0, 0), "city", 5)  # marks the village and the township
    skip_to_province = visit(village(1, 0), "province", 1, skip_level=True)  # not the county
    fifty_to_city = visit(village(2, 0), "city", 50)  # not the county either
    six_to_city = [visit(village(t, 0), "city", 6) for t in range(3, 10)]
    four_to_city = visit(village(12, 0), "city", 4)  # marks nothing
    # Six to the county mark only the village: the other 14 villages of townships 0-9.
    six_to_county = {
        (t, i): visit(village(t, i), "county", 6) for t in range(10) for i in range(1, 15)
    }
    # Two townships marked by visits attributed to the township itself.
    township_group = visit(townships[10], "city", 5)
    township_skip = visit(townships[11], "province", 1, skip_level=True)

    # The township desk posts for its own township, the county desk for the rest.
    own = [five_to_city, *(e for (t, _), e in six_to_county.items() if t == 0)]
    others = [
        skip_to_province,
        fifty_to_city,
        *six_to_city,
        four_to_city,
        *(e for (t, _), e in six_to_county.items() if t != 0),
        township_group,
        township_skip,
    ]
    await pipeline.post(pipeline.keys["township_desk"], *own)
    await pipeline.post(pipeline.keys["county_desk"], *others)
    await pipeline.drained()

    # 150 of 300 villages (townships 0-9) and 12 of 20 townships (0-11) are not three-no; the
    # county is. Every target is met, two of them exactly.
    report = await summary(pipeline)
    levels = report["levels"]
    assert without_counts(levels["county"]) == figures(1, 1, 1.0, True)
    assert without_counts(levels["township"]) == figures(20, 8, 0.4, True)
    assert without_counts(levels["village"]) == figures(300, 150, 0.5, True)
    # Villages: 140 six to the county, 7 six to the city, 5 and 50 to the city: 149 batches of
    # 937 people; one skip-level visit of one person.
    assert levels["village"]["batches"] == counts(collective=149, skip_level=1)
    assert levels["village"]["people"] == counts(collective=937, skip_level=1)
    # Townships: 5, 50 and 7 x 6 to the city through villages, 5 at township 10 itself; the
    # skip-level visits of township 1's village and of township 11.
    assert levels["township"]["batches"] == counts(collective=10, skip_level=2)
    assert levels["township"]["people"] == counts(collective=102, skip_level=2)
    assert levels["county"]["batches"] == counts()
    children = {c["unit"]["code"]: c["levels"] for c in report["children"]}
    assert list(children) == townships
    assert without_counts(children[townships[0]]["township"]) == figures(1, 0, 0.4, False)
    assert without_counts(children[townships[0]]["village"]) == figures(15, 0, 0.5, False)
    assert without_counts(children[townships[10]]["township"]) == figures(1, 0, 0.4, False)
    assert without_counts(children[townships[10]]["village"]) == figures(15, 15, 0.5, True)
    assert without_counts(children[townships[12]]["township"]) == figures(1, 1, 0.4, True)
    assert without_counts(children[townships[12]]["village"]) == figures(15, 15, 0.5, True)

    # The boundaries, unit by unit.
    five = await status(pipeline, village(0, 0))
    assert five["three_no"] is False and five["counting_event_ids"] == [five_to_city["event_id"]]
    assert five["counts"] == counts(collective=1) and five["people"] == counts(collective=5)
    assert (await status(pipeline, townships[0]))["counting_event_ids"] == [
        five_to_city["event_id"]
    ]
    skip = await status(pipeline, village(1, 0))
    assert skip["counts"] == counts(skip_level=1) and skip["people"] == counts(skip_level=1)
    assert (await status(pipeline, townships[1]))["counts"] == counts(skip_level=1)
    four = await status(pipeline, village(12, 0))
    assert four["three_no"] is True and four["version"] == 0
    assert (await status(pipeline, townships[12]))["version"] == 0
    county = await status(pipeline, COUNTY)
    assert county["three_no"] is True and county["version"] == 0

    # Phase 2: 51 people to the city mark the county (and their village and township), two
    # more villages and a township are marked, and two voids make a village and township 10
    # clean again. Every target is missed.
    fifty_one = visit(village(12, 1), "city", 51)
    await pipeline.post(
        pipeline.keys["county_desk"],
        fifty_one,
        visit(village(12, 2), "county", 6),
        visit(village(13, 0), "province", 2, skip_level=True),
        events.voided(township_group),
    )
    await pipeline.post(pipeline.keys["township_desk"], events.voided(six_to_county[(0, 1)]))
    await pipeline.drained()

    report = await summary(pipeline)
    levels = report["levels"]
    assert without_counts(levels["county"]) == figures(1, 0, 1.0, False)
    assert without_counts(levels["township"]) == figures(20, 7, 0.4, False)
    assert without_counts(levels["village"]) == figures(300, 148, 0.5, False)
    assert levels["village"]["batches"] == counts(collective=150, skip_level=2)
    assert levels["village"]["people"] == counts(collective=988, skip_level=3)
    assert levels["township"]["batches"] == counts(collective=10, skip_level=3)
    assert levels["township"]["people"] == counts(collective=148, skip_level=4)
    assert levels["county"]["batches"] == counts(collective=1)
    assert levels["county"]["people"] == counts(collective=51)
    children = {c["unit"]["code"]: c["levels"] for c in report["children"]}
    assert without_counts(children[townships[0]]["village"]) == figures(15, 1, 0.5, False)
    assert without_counts(children[townships[10]]["township"]) == figures(1, 1, 0.4, True)
    assert without_counts(children[townships[12]]["township"]) == figures(1, 0, 0.4, False)
    assert without_counts(children[townships[12]]["village"]) == figures(15, 13, 0.5, True)

    county = await status(pipeline, COUNTY)
    assert county["three_no"] is False and county["counting_event_ids"] == [fifty_one["event_id"]]
    for cleaned in (village(0, 1), townships[10]):
        again = await status(pipeline, cleaned)
        assert again["three_no"] is True and again["counting_event_ids"] == []
        assert again["counts"] == counts() and again["version"] == 2
