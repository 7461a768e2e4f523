"""Early warnings (docs/domain.md section 8) through the real pipeline: each kind raised at its
boundary and not one below it, a void clears what its event alone raised, a redelivered batch
raises nothing twice, each change is published once on the warning topic (read back through
`shared.messages.parse_early_warning`), and a rebuild gives the same warnings as the
incremental evaluation (also where corrections move visits between counties). Units of a
province of this module's own
(47), one county per test, so no other test's visits fall in their windows."""

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from services.evaluation.live.service import Incoming
from services.evaluation.rebuild.run import rebuild
from services.evaluation.warnings.upkeep import EarlyWarnings
from shared.config import Settings
from shared.db import Database
from shared.registry.generator import ProvinceShape, generate, write_csv
from shared.registry.loader import load_file
from tests.evaluation.conftest import Evaluation
from tests.evaluation.helpers import Desk, status, wait_applied
from tests.support import events
from tests.support.messages import event_records, published_warnings
from tests.support.waiting import wait_until

PROVINCE = ProvinceShape(
    province="47", cities=1, counties=14, townships_per_county=2, villages_per_township=2
)
T = datetime.fromisoformat("2019-08-01T10:00:00+08:00")


class County:
    def __init__(self, code: str) -> None:
        self.code = code
        self.townships = [f"{code[:6]}{100 + t:03d}000" for t in range(2)]
        self.villages = [f"{t[:9]}{201 + v:03d}" for t in self.townships for v in range(2)]

    @property
    def village(self) -> str:
        return self.villages[0]

    @property
    def township(self) -> str:
        return self.townships[0]


@pytest.fixture(scope="module")
async def counties(evaluation: Evaluation, db: Database, tmp_path_factory: Any) -> Iterator[County]:
    path = tmp_path_factory.mktemp("warnings") / "province.csv"
    with path.open("w", encoding="utf-8") as handle:
        write_csv(generate(PROVINCE), handle)
    async with db.engine.begin() as connection:
        await load_file(connection, path)
    await evaluation.worker.registry.refresh()
    return iter(County(f"4701{n:02d}000000") for n in range(1, PROVINCE.counties + 1))


def at(moment: datetime) -> str:
    return moment.isoformat()


def visit(unit: str, moment: datetime = T, **fields: Any) -> dict[str, Any]:
    """A one-person visit to the township: counted by no collective rule, near none."""
    defaults = {"destination": "township", "headcount": 1}
    return events.visit(unit, occurred_at=at(moment), **(defaults | fields))


async def warnings_in(db: Database, county: County) -> dict[str, dict[str, Any]]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                "SELECT * FROM evaluation.warning WHERE unit_code LIKE :prefix ORDER BY warning_id"
            ),
            {"prefix": f"{county.code[:6]}%"},
        )
        found = {}
        for row in rows.mappings():
            found[str(row["warning_id"])] = dict(row) | {
                "event_ids": sorted(str(i) for i in row["event_ids"])
            }
        return found


def raised(warnings: dict[str, dict[str, Any]]) -> set[tuple[str, str, tuple[str, ...]]]:
    """(kind, unit, event ids) of the warnings not cleared."""
    return {
        (w["kind"], w["unit_code"], tuple(w["event_ids"]))
        for w in warnings.values()
        if w["cleared_at"] is None
    }


async def post_and_wait(desk: Desk, db: Database, *payloads: dict[str, Any]) -> list[str]:
    ids = await desk.post(*payloads)
    await wait_applied(db, ids)
    return ids


async def wait_published(settings: Settings, warnings: dict[str, dict[str, Any]]) -> None:
    """Until the topic holds the latest version of each of these warnings."""
    wanted = {(i, w["version"]) for i, w in warnings.items()}

    async def all_there() -> bool:
        found = await published_warnings(settings, set(warnings))
        return wanted <= {(str(w.warning_id), w.version) for w in found}

    await wait_until(all_there, timeout=20, message="warnings on the warning topic")


def ids(*payloads: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(p["event_id"] for p in payloads))


# --- near threshold -------------------------------------------------------------------------


async def test_near_threshold_at_each_level_and_not_below_or_at_the_threshold(
    counties: Iterator[County], desk: Desk, db: Database, settings: Settings
) -> None:
    county = next(counties)
    village, township = county.village, county.township
    four_to_county = visit(village, destination="county", headcount=4)
    three_to_city = visit(village, destination="city", headcount=3)
    forty_one_to_city = visit(village, destination="city", headcount=41)
    fifty_to_province = visit(village, destination="province", headcount=50)
    quiet = [
        visit(village, destination="county", headcount=2),  # below the margin
        visit(village, destination="county", headcount=5),  # counted: collective
        visit(village, destination="township", headcount=4),  # a destination no rule counts
        visit(village, destination="city", headcount=40),  # below the county's margin
        visit(village, destination="city", headcount=51),  # counted at the county
    ]
    posted = [four_to_county, three_to_city, forty_one_to_city, fifty_to_province, *quiet]
    for n, payload in enumerate(posted):  # 40 days apart: no rising spell
        payload["occurred_at"] = at(T + timedelta(days=40 * n))
    await post_and_wait(desk, db, *posted)

    warnings = await warnings_in(db, county)
    assert raised(warnings) == {
        ("near_threshold", village, ids(four_to_county)),
        ("near_threshold", village, ids(three_to_city)),
        ("near_threshold", township, ids(three_to_city)),
        ("near_threshold", county.code, ids(forty_one_to_city)),
        ("near_threshold", county.code, ids(fifty_to_province)),
    }
    assert all(w["version"] == 1 and w["cleared_at"] is None for w in warnings.values())
    await wait_published(settings, warnings)
    messages = await published_warnings(settings, set(warnings))
    assert sorted(str(m.warning_id) for m in messages) == sorted(warnings)  # once each
    county_warning = next(
        m for m in messages if m.unit_code == county.code and m.detail["headcount"] == 41
    )
    assert county_warning.detail == {
        "level": "county",
        "headcount": 41,
        "destination": "city",
        "counted_from": 51,
    }


# --- repeat petitioner ----------------------------------------------------------------------


async def test_repeat_petitioner_three_visits_within_90_days_warn_over_91_days_do_not(
    counties: Iterator[County], desk: Desk, db: Database
) -> None:
    county = next(counties)
    first, second, third = county.villages[0], county.villages[2], county.villages[1]
    within, spread = f"身份证-{uuid.uuid4()}", f"身份证-{uuid.uuid4()}"
    start = datetime.fromisoformat("2019-03-01T09:30:00+08:00")
    repeated = [
        visit(first, start, petitioner_ref=within),
        visit(second, start + timedelta(days=45), petitioner_ref=within),
        visit(third, start + timedelta(days=89), petitioner_ref=within),
    ]
    over_91_days = [
        visit(first, start, petitioner_ref=spread),
        visit(second, start + timedelta(days=45), petitioner_ref=spread),
        visit(third, start + timedelta(days=90), petitioner_ref=spread),
    ]
    await post_and_wait(desk, db, *repeated, *over_91_days)

    warnings = await warnings_in(db, county)
    assert raised(warnings) == {("repeat_petitioner", third, ids(*repeated))}
    (warning,) = warnings.values()
    assert warning["detail"] == {"county_code": county.code, "visits": 3, "days": 90}
    # Only intake's keyed hash reaches the evaluation, and no warning carries even that.
    async with db.engine.connect() as connection:
        stored = await connection.execute(
            sa.text(
                "SELECT DISTINCT petitioner_ref FROM evaluation.warning_visit "
                "WHERE event_id::text = ANY(:ids)"
            ),
            {"ids": [p["event_id"] for p in repeated + over_91_days]},
        )
        refs = {row[0] for row in stored}
    assert len(refs) == 2 and not refs & {within, spread}
    assert not any(ref in str(warning["detail"]) for ref in refs)


async def test_repeat_visits_in_two_counties_do_not_warn(
    counties: Iterator[County], desk: Desk, db: Database
) -> None:
    one, other = next(counties), next(counties)
    ref = f"身份证-{uuid.uuid4()}"
    start = datetime.fromisoformat("2019-03-01T09:30:00+08:00")
    await post_and_wait(
        desk,
        db,
        visit(one.village, start, petitioner_ref=ref),
        visit(other.village, start + timedelta(days=10), petitioner_ref=ref),
        visit(one.village, start + timedelta(days=20), petitioner_ref=ref),
    )
    assert await warnings_in(db, one) == await warnings_in(db, other) == {}


# --- rising ---------------------------------------------------------------------------------


def baseline_visits(unit: str) -> list[dict[str, Any]]:
    """Nine visits in the 90 days before the 30 up to T: a monthly average of 3."""
    return [visit(unit, T - timedelta(days=115 - 10 * n)) for n in range(9)]


def recent_visits(unit: str, count: int) -> list[dict[str, Any]]:
    """`count` visits in the 30 days up to T, five days apart, the last at T."""
    return [visit(unit, T - timedelta(days=5 * n)) for n in reversed(range(count))]


@pytest.mark.parametrize(
    ("baseline", "recent", "warns"),
    [
        (False, 5, True),  # the minimum, with no visits before
        (False, 4, False),
        (True, 6, True),  # twice the monthly average of 3
        (True, 5, False),
    ],
)
async def test_rising_at_the_minimum_and_the_factor_and_not_one_below(
    counties: Iterator[County],
    desk: Desk,
    db: Database,
    baseline: bool,
    recent: int,
    warns: bool,
) -> None:
    county = next(counties)
    recents = recent_visits(county.village, recent)
    await post_and_wait(desk, db, *(baseline_visits(county.village) if baseline else []), *recents)

    warnings = await warnings_in(db, county)
    found = await status(db, county.village, "2019")
    assert found is None or found["three_no"]  # warnings never change status
    if not warns:
        assert warnings == {}
        return
    assert raised(warnings) == {
        ("rising", unit, ids(*recents)) for unit in (county.village, county.township, county.code)
    }
    for warning in warnings.values():
        assert warning["detail"] == {
            "recent": recent,
            "baseline": 9 if baseline else 0,
            "recent_days": 30,
            "baseline_days": 90,
        }


# --- corrections, redelivery ----------------------------------------------------------------


async def accepted_at(db: Database, payloads: list[dict[str, Any]]) -> list[datetime]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.text("SELECT accepted_at FROM evaluation.warning_visit WHERE event_id = ANY(:ids)"),
            {"ids": [uuid.UUID(p["event_id"]) for p in payloads]},
        )
        return [row[0] for row in rows]


async def test_a_rising_warning_a_correction_raises_is_raised_when_its_latest_visit_was_accepted(
    counties: Iterator[County], desk: Desk, db: Database
) -> None:
    county = next(counties)
    elsewhere, village = county.villages[0], county.villages[3]  # in two townships
    moved = visit(elsewhere, T - timedelta(days=2))
    await post_and_wait(desk, db, moved)
    recents = recent_visits(village, 4)  # one below the minimum
    await post_and_wait(desk, db, *recents)
    assert {w["unit_code"] for w in (await warnings_in(db, county)).values()} == {county.code}

    # The visit moved in is the fifth: the warnings name it and the four accepted after it,
    # none of which the correction's batch holds.
    await post_and_wait(desk, db, events.reattributed(moved, village))

    warnings = await warnings_in(db, county)
    raised_here = {
        (w["unit_code"], tuple(w["event_ids"])): w["raised_at"]
        for w in warnings.values()
        if w["unit_code"] in (village, county.townships[1])
    }
    latest = max(await accepted_at(db, recents))
    assert raised_here == {
        (village, ids(moved, *recents)): latest,
        (county.townships[1], ids(moved, *recents)): latest,
    }


async def test_a_void_clears_what_its_event_alone_raised_and_redelivery_raises_nothing(
    counties: Iterator[County],
    desk: Desk,
    db: Database,
    settings: Settings,
    evaluation: Evaluation,
) -> None:
    county = next(counties)
    near = visit(county.village, destination="county", headcount=4)
    ref = f"来访登记-{uuid.uuid4()}"
    start = datetime.fromisoformat("2020-01-01T09:00:00+08:00")
    repeated = [
        visit(county.villages[n % 2], start + timedelta(days=days), petitioner_ref=ref)
        for n, days in enumerate((0, 19, 40, 60))
    ]
    await post_and_wait(desk, db, near, *repeated)
    before = await warnings_in(db, county)
    assert raised(before) == {
        ("near_threshold", county.village, ids(near)),
        ("repeat_petitioner", repeated[2]["unit_code"], ids(*repeated[:3])),
        ("repeat_petitioner", repeated[3]["unit_code"], ids(*repeated)),
    }

    voids = [events.voided(near), events.voided(repeated[0])]
    await post_and_wait(desk, db, *voids)

    after = await warnings_in(db, county)
    assert raised(after) == {("repeat_petitioner", repeated[3]["unit_code"], ids(*repeated[1:]))}
    assert {i for i, w in after.items() if w["cleared_at"] is not None} == {
        i for i, w in before.items() if w["event_ids"] != list(ids(*repeated))
    }
    assert all(w["version"] == 2 for w in after.values())
    await wait_published(settings, after)
    messages = await published_warnings(settings, set(after))
    assert sorted((str(m.warning_id), m.version) for m in messages) == sorted(
        (i, v) for i in after for v in (1, 2)
    )
    assert all(
        (m.cleared_at is None) == (m.version == 1) for m in messages if m.kind == "near_threshold"
    )
    latest = {str(m.warning_id): m for m in messages if m.version == 2}
    assert {
        i: (m.kind, m.unit_code, m.raised_at, m.cleared_at, sorted(m.event_ids), m.detail)
        for i, m in latest.items()
    } == {
        i: (w["kind"], w["unit_code"], w["raised_at"], w["cleared_at"], w["event_ids"], w["detail"])
        for i, w in after.items()
    }

    # The same records applied again (a redelivery): nothing changes, nothing is published.
    records = await event_records(settings, {p["event_id"] for p in [near, *repeated, *voids]})
    async with evaluation.worker.db.session() as session:
        applied = await evaluation.worker.service.apply(
            session, [Incoming(r) for r in records], now=evaluation.clock.now()
        )
    assert applied.event_ids == []
    # And found again from the stored visits, they are what is stored.
    async with evaluation.worker.db.session() as session:
        warnings = EarlyWarnings(
            campaign=evaluation.worker.service.campaign, registry=evaluation.worker.registry
        )
        assert await warnings.apply(session, records, touched=[r.event_id for r in records]) == []
    assert await warnings_in(db, county) == after


async def test_a_reattribution_moves_near_threshold_warnings_to_the_new_chain(
    counties: Iterator[County], desk: Desk, db: Database
) -> None:
    county = next(counties)
    village, elsewhere = county.villages[0], county.villages[3]  # in two townships
    near = visit(village, destination="city", headcount=4)
    await post_and_wait(desk, db, near)
    before = await warnings_in(db, county)
    assert raised(before) == {
        ("near_threshold", village, ids(near)),
        ("near_threshold", county.township, ids(near)),
    }

    await post_and_wait(desk, db, events.reattributed(near, elsewhere))

    after = await warnings_in(db, county)
    assert raised(after) == {
        ("near_threshold", elsewhere, ids(near)),
        ("near_threshold", county.townships[1], ids(near)),
    }
    assert {i for i, w in after.items() if w["cleared_at"] is not None} == set(before)


# --- rebuild --------------------------------------------------------------------------------


async def test_rebuild_gives_the_warnings_of_the_incremental_evaluation(
    counties: Iterator[County],
    desk: Desk,
    db: Database,
    evaluation: Evaluation,
    settings: Settings,
) -> None:
    county = next(counties)
    village, other = county.villages[0], county.villages[3]  # in two townships
    near = visit(village, destination="city", headcount=3)
    moved = visit(village, destination="city", headcount=4)
    ref = f"身份证-{uuid.uuid4()}"
    repeated = [
        visit(county.villages[n], T - timedelta(days=80 - 20 * n), petitioner_ref=ref)
        for n in range(4)
    ]
    spell = recent_visits(other, 6)
    await post_and_wait(desk, db, near, moved, *repeated, *spell)
    corrections = [
        events.voided(near),
        events.reattributed(moved, other),
        events.voided(repeated[1]),
        events.voided(spell[0]),  # the spell's onset moves to the next visit
    ]
    await post_and_wait(desk, db, *corrections)
    incremental = await warnings_in(db, county)
    assert {w["kind"] for w in incremental.values() if w["cleared_at"] is None} == {
        "near_threshold",
        "repeat_petitioner",
        "rising",
    }
    assert any(w["cleared_at"] is not None for w in incremental.values() if w["kind"] == "rising")
    everyone_before = await all_warnings(db)
    await wait_published(settings, incremental)
    published_before = len(await published_warnings(settings, set(incremental)))

    rebuilt = await lost_and_rebuilt(db, evaluation, [county], incremental, everyone_before)

    # Published once each again, as the database wrote them from the rebuilt rows.
    async def republished() -> bool:
        found = await published_warnings(settings, set(rebuilt))
        return len(found) == published_before + len(rebuilt)

    await wait_until(republished, timeout=20, message="the rebuilt warnings on the topic")
    latest = {str(m.warning_id): m for m in await published_warnings(settings, set(rebuilt))}
    assert {
        i: (
            m.kind,
            m.unit_code,
            sorted(m.event_ids),
            m.raised_at,
            m.cleared_at,
            m.detail,
            m.version,
        )
        for i, m in latest.items()
    } == {i: (*[w[k] for k in COMPARED], w["version"]) for i, w in rebuilt.items()}


async def test_rebuild_finds_the_warnings_of_visits_moved_between_counties(
    counties: Iterator[County], desk: Desk, db: Database, evaluation: Evaluation
) -> None:
    """A rebuild finds the warnings a county at a time; a visit reported for one county and
    attributed to another counts in both, as the incremental evaluation counts it."""
    a, b = next(counties), next(counties)
    # Rising in B once a visit reported for A is moved there (five in 30 days).
    spell = recent_visits(b.village, 4)
    moved_to_b = visit(a.village, T - timedelta(days=2))
    # Repeat in A once the third visit, reported for B, is moved there; and one in B undone
    # when a visit of its own moves to A.
    into_a, out_of_b = f"身份证-{uuid.uuid4()}", f"身份证-{uuid.uuid4()}"
    repeat_a = [
        visit(a.villages[n], T - timedelta(days=10 * n), petitioner_ref=into_a) for n in (1, 2)
    ]
    moved_to_a = visit(b.villages[1], T - timedelta(days=5), petitioner_ref=into_a)
    repeat_b = [
        visit(b.villages[n], T - timedelta(days=10 * n), petitioner_ref=out_of_b) for n in (1, 2, 3)
    ]
    near = visit(a.villages[2], destination="city", headcount=3)
    # Not rising in A over its baseline; five visits alone would be, read without it in B.
    baseline, recent = baseline_visits(a.villages[1]), recent_visits(a.villages[1], 5)
    await post_and_wait(
        desk, db, *spell, moved_to_b, *repeat_a, moved_to_a, *repeat_b, near, *baseline, *recent
    )
    await post_and_wait(
        desk,
        db,
        events.reattributed(moved_to_b, b.village),
        events.reattributed(moved_to_a, a.villages[3]),
        events.reattributed(repeat_b[0], a.villages[0]),
        events.reattributed(near, b.villages[2]),
        *[events.reattributed(v, b.villages[3]) for v in recent],
    )
    incremental = await warnings_in(db, a) | await warnings_in(db, b)
    assert raised(incremental) >= {
        ("rising", b.village, ids(*spell, moved_to_b)),
        ("rising", b.township, ids(*spell, moved_to_b)),
        ("repeat_petitioner", a.villages[3], ids(*repeat_a, moved_to_a)),
    }
    assert any(w["kind"] == "near_threshold" for w in incremental.values())
    assert any(
        w["kind"] == "repeat_petitioner" and w["cleared_at"] is not None
        for w in (await warnings_in(db, b)).values()
    )
    everyone_before = await all_warnings(db)

    await lost_and_rebuilt(db, evaluation, [a, b], incremental, everyone_before)


COMPARED = ("kind", "unit_code", "event_ids", "raised_at", "cleared_at", "detail")


async def lost_and_rebuilt(
    db: Database,
    evaluation: Evaluation,
    counties: list[County],
    incremental: dict[str, dict[str, Any]],
    everyone_before: dict[str, dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """The counties' warnings lost, then found again by a rebuild as the incremental
    evaluation found them (`incremental`), and no other warning changed; returns them."""
    async with db.engine.begin() as connection:
        for county in counties:
            await connection.execute(
                sa.text("DELETE FROM evaluation.warning WHERE unit_code LIKE :prefix"),
                {"prefix": f"{county.code[:6]}%"},
            )
    await rebuild(evaluation.settings, clock=evaluation.clock)

    rebuilt = {i: w for county in counties for i, w in (await warnings_in(db, county)).items()}
    assert {i: {k: w[k] for k in COMPARED} for i, w in rebuilt.items()} == {
        i: {k: w[k] for k in COMPARED} for i, w in incremental.items()
    }
    everyone_after = await all_warnings(db)
    assert {i: w for i, w in everyone_after.items() if i not in rebuilt} == {
        i: w for i, w in everyone_before.items() if i not in incremental
    }
    return rebuilt


async def all_warnings(db: Database) -> dict[str, dict[str, Any]]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(sa.text("SELECT * FROM evaluation.warning"))
        return {str(row["warning_id"]): dict(row) for row in rows.mappings()}
