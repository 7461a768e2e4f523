"""Helpers for the evaluation tests: posting through intake, waiting for the evaluation to apply,
reading statuses, and handing each test units and periods of its own."""

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa

from services.evaluation.config import Clock
from shared.access import service as access_service
from shared.access.models import Role
from shared.config import Settings, clock_offset
from shared.db import Database
from shared.registry.cache import UnitRegistry
from shared.registry.generator import ProvinceShape
from tests.conftest import COUNTY, bearer
from tests.evaluation.cases import public_opinion
from tests.support import events
from tests.support.stack import read_topic
from tests.support.waiting import wait_until

# A province of this package's own (45), so that the counties below are never short of units
# and no other package counts or moves them.
WORLDS_PROVINCE = ProvinceShape(
    province="45", cities=2, counties=12, townships_per_county=4, villages_per_township=3
)
# The demo county first (20 townships), then the counties of the package's own province.
COUNTIES = (
    COUNTY,
    *(f"4501{n:02d}000000" for n in range(1, 7)),
    *(f"4502{n:02d}000000" for n in range(1, 7)),
)
# Calendar-year periods no other test directory posts into, and out of the rolling window.
YEARS = tuple(str(year) for year in range(2019, 2025))
RECENT_TOWNSHIPS = 6
CONTENT = (
    "three_no",
    "skip_level",
    "non_reception_site",
    "collective",
    "incident",
    "skip_level_people",
    "non_reception_site_people",
    "collective_people",
    "incident_people",
    "counting_event_ids",
)


@dataclass(frozen=True)
class World:
    """A county, one of its townships and that township's villages, in a period where no other
    test puts events under the same unit."""

    period: str
    county: str
    township: str
    villages: tuple[str, ...]

    @property
    def village(self) -> str:
        return self.villages[0]

    def at(self, day: str = "06-03T09:30:00+08:00") -> str:
        return f"{self.period}-{day}"


@dataclass
class Worlds:
    registry: UnitRegistry
    _slots: list[tuple[str, str]] = field(default_factory=list)
    _townships: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    _recent: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._slots = [(year, county) for year in YEARS for county in COUNTIES]
        # Townships kept for tests with recent events: the rolling period has no year to
        # keep them apart, so these townships are never handed out for anything else.
        self._recent = list(self.registry.children(COUNTY)[-RECENT_TOWNSHIPS:])

    def county(self) -> World:
        """A whole county to itself for one period (for assertions on the county's status)."""
        return self.counties(1)[0]

    def counties(self, count: int) -> list[World]:
        """Whole counties to themselves, all in the same period."""
        for year in reversed(YEARS):
            # The small counties first: the demo county's many townships serve `townships`.
            whole = sorted(
                (s for s in self._slots if s[0] == year and s not in self._townships),
                key=lambda s: s[1] == COUNTY,
            )
            if len(whole) >= count:
                for slot in whole[:count]:
                    self._slots.remove(slot)
                return [self._world(s, self.registry.children(s[1])[0]) for s in whole[:count]]
        raise RuntimeError("no counties left")

    def township(self) -> World:
        """A township to itself for one period; the county may see other tests' events."""
        return self.townships(1)[0]

    def townships(self, count: int) -> list[World]:
        """Townships to themselves, all in the same period and county."""
        for slot in sorted(self._slots, key=lambda s: s[1] != COUNTY):
            left = self._townships.setdefault(slot, self._shareable(slot[1]))
            if len(left) >= count:
                taken, left[:] = left[:count], left[count:]
                return [self._world(slot, township) for township in taken]
        raise RuntimeError("no townships left")

    def recent(self) -> World:
        """A township to itself in every period, the rolling one included."""
        return self._world((YEARS[-1], COUNTY), self._recent.pop(0))

    def _shareable(self, county: str) -> list[str]:
        return [t for t in self.registry.children(county) if t not in self._recent]

    def _world(self, slot: tuple[str, str], township: str) -> World:
        period, county = slot
        return World(period, county, township, tuple(self.registry.children(township)))


def offset_seconds(clock: Clock) -> str:
    """SANWU_CLOCK_OFFSET_SECONDS for a process whose clock is to read as `clock` does: the
    run's own offset and what the tests moved it by since."""
    return str((clock_offset() + clock.offset).total_seconds())


class Desk:
    """Posts events through the real intake service with an admin key."""

    def __init__(self, intake: httpx.AsyncClient, key: str) -> None:
        self.intake = intake
        self.key = key

    async def post(self, *events: dict[str, Any]) -> list[str]:
        response = await self.intake.post(
            "/v1/events/batch", json={"events": list(events)}, headers=bearer(self.key)
        )
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert all(r["status"] == "accepted" for r in results), results
        return [e["event_id"] for e in events]


async def create_key(db: Database, *, role: Role, scope: str | None) -> str:
    async with db.engine.begin() as connection:
        return await access_service.create(connection, role=role, scope_code=scope)


async def effect(evaluation: httpx.AsyncClient, event_id: str, key: str) -> httpx.Response:
    """GET /v1/events/{event_id}/effect with the key."""
    return await evaluation.get(f"/v1/events/{event_id}/effect", headers=bearer(key))


async def applied_count(db: Database, event_ids: Sequence[str]) -> int:
    async with db.engine.connect() as connection:
        found = await connection.execute(
            sa.text(
                """
                SELECT (SELECT count(*) FROM evaluation.event
                        WHERE known AND event_id::text = ANY(:ids))
                     + (SELECT count(*) FROM evaluation.correction WHERE event_id::text = ANY(:ids))
                """
            ),
            {"ids": list(event_ids)},
        )
        return int(found.scalar_one())


async def wait_applied(db: Database, event_ids: Sequence[str], *, timeout: float = 20.0) -> None:
    """Until the evaluation has applied every one of these events (or corrections)."""
    wanted = len(set(event_ids))

    async def all_applied() -> bool:
        return await applied_count(db, event_ids) >= wanted

    await wait_until(all_applied, timeout=timeout, message=f"{wanted} events to be applied")


async def status(db: Database, unit_code: str, period: str) -> dict[str, Any] | None:
    async with db.engine.connect() as connection:
        row = await connection.execute(
            sa.text("SELECT * FROM evaluation.status WHERE unit_code = :unit AND period = :period"),
            {"unit": unit_code, "period": period},
        )
        found = row.mappings().first()
    if found is None:
        return None
    return dict(found) | {"counting_event_ids": [str(i) for i in found["counting_event_ids"]]}


async def statuses(db: Database, units: Iterable[str], period: str) -> dict[str, Any]:
    return {unit: await status(db, unit, period) for unit in units}


async def all_statuses(db: Database) -> dict[tuple[str, str], dict[str, Any]]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(sa.text("SELECT * FROM evaluation.status"))
        return {(r["unit_code"], r["period"]): dict(r) for r in rows.mappings()}


def content(row: dict[str, Any] | None) -> dict[str, Any]:
    """A status without its history (version, changed_at); no row is the clean status."""
    if row is None:
        return {name: 0 for name in CONTENT} | {"three_no": True, "counting_event_ids": []}
    return {name: row[name] for name in CONTENT} | {
        "counting_event_ids": [str(i) for i in row["counting_event_ids"]]
    }


def mixed_workload(
    worlds: Sequence[World], *, rng: random.Random, count: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Events of every kind over the worlds' villages and townships, then corrections: voids
    and re-attributions (some to another world of the same period: an event keeps its moment,
    and a world's units are its own in its period only). Returns (corrections to post first,
    before their targets; everything else in posting order)."""
    posted: list[dict[str, Any]] = []
    for _ in range(count):
        world = rng.choice(worlds)
        unit = rng.choice((*world.villages[:4], world.township))
        occurred_at = world.at(f"{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00+08:00")
        roll = rng.random()
        if roll < 0.08:
            posted.append(events.incident(unit, occurred_at=occurred_at))
        elif roll < 0.12:
            posted.append(public_opinion(unit, occurred_at=occurred_at))
        else:
            lowest = 0 if unit == world.township else 1
            posted.append(
                events.visit(
                    unit,
                    destination=rng.choice(DESTINATIONS[lowest:]),
                    headcount=rng.choice((1, 2, 4, 5, 6, 20, 50, 51, 60)),
                    occurred_at=occurred_at,
                    skip_level=rng.random() < 0.3,
                    non_reception_site=rng.random() < 0.1,
                    law_related=rng.random() < 0.1,
                )
            )
    corrections = []
    for target in rng.sample(posted, k=count // 5):
        if rng.random() < 0.5:
            corrections.append(events.voided(target))
        else:
            period = target["occurred_at"][:4]  # `World.at`: the period's year first
            elsewhere = rng.choice([w for w in worlds if w.period == period])
            corrections.append(events.reattributed(target, rng.choice(elsewhere.villages[:4])))
    early = corrections[: len(corrections) // 4]
    return early, posted + corrections[len(early) :]


DESTINATIONS = ("township", "county", "city", "province", "national")


async def post_workload(
    desk: Desk, db: Database, early: list[dict[str, Any]], rest: list[dict[str, Any]]
) -> list[str]:
    """Corrections that come before their targets first (and applied), then the rest."""
    ids = []
    if early:
        ids += await desk.post(*early)
        await wait_applied(db, ids)
    for start in range(0, len(rest), 500):
        ids += await desk.post(*rest[start : start + 500])
    return ids


async def read_status_topic(settings: Settings) -> list[dict[str, Any]]:
    """The status messages on the topic; poison messages other tests put there on purpose are
    left out."""
    messages = []
    for _, key, value, headers in await read_topic(settings, settings.status_topic):
        try:
            messages.append({"key": key, "value": json.loads(value), "headers": headers})
        except ValueError:
            continue
    return messages
