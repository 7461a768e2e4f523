"""A load generator that keeps a ledger of what it was told, in the spirit of Jepsen's queue
checker: every request ends as ok (the service said it accepted), failed (the service said it
did not) or unknown (no answer: a timeout or a dropped connection).

Picking the next event costs the same however long the run has gone on: the accepted events
and visits are kept in lists of their own, and villages by county, so a repeat or a
correction target is one random index.

With a second, narrower key (a township desk's), some corrections go out under it, of events in
its township or anywhere in the county, re-attributing anywhere in the county: intake refuses
those outside its scope (403) when it holds the target, and the reference model judges the scope
of the ones it accepted."""

import asyncio
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from bench.backlog import edge_times
from shared.campaign import system_now
from tests.support import events

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class Ledger:
    ok: dict[str, dict[str, Any]] = field(default_factory=dict)
    unknown: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: int = 0
    slowest: float = 0.0  # seconds, of any answered request
    # Each accepted event once, in the order first accepted (ok's values, ready to pick from).
    accepted: list[dict[str, Any]] = field(default_factory=list)
    visits: list[dict[str, Any]] = field(default_factory=list)
    # The visits first posted in the narrower key's unit (`home`, a code prefix), and what
    # became of the corrections sent with that key, by outcome.
    home: str | None = None
    home_visits: list[dict[str, Any]] = field(default_factory=list)
    scoped: Counter[str] = field(default_factory=Counter)

    def record(self, event: dict[str, Any], outcome: str) -> None:
        self.requests += 1
        event_id = event["event_id"]
        if outcome == "ok":
            if event_id not in self.ok:
                self.accepted.append(event)
                if event["type"] == "petition_visit":
                    self.visits.append(event)
                    if self.home and event["unit_code"].startswith(self.home):
                        self.home_visits.append(event)
            self.ok[event_id] = event
            self.unknown.pop(event_id, None)
            self.failed.pop(event_id, None)
        elif outcome == "unknown" or event_id in self.unknown:
            # A repeat that failed says nothing about an earlier attempt that got no answer.
            self.failed.pop(event_id, None)
            self.unknown[event_id] = event
        elif event_id not in self.ok:
            self.failed[event_id] = event

    def summary(self) -> str:
        return (
            f"{self.requests} requests: {len(self.ok)} ok, {len(self.unknown)} unknown, "
            f"{len(self.failed)} failed; corrections with the narrower key {dict(self.scoped)}"
        )


def ledger_seconds() -> float:
    """How long a ledger test's load runs: SANWU_LEDGER_SECONDS (default 30; `make
    test-faults-long` runs 300), read when the test module is collected."""
    return float(os.environ.get("SANWU_LEDGER_SECONDS", "30"))


def timeout_for(load_seconds: float) -> int:
    """A fault test's timeout: its load, then as long again for draining the pipeline and
    checking it (both grow with what was accepted), plus five minutes for starting and
    stopping processes and the fixed waits."""
    return int(300 + 2 * load_seconds)


def random_time(rng: random.Random, now: datetime) -> str:
    """On a period's edge, inside the plan's 2018 period or inside the trailing 12 months, at
    random."""
    if rng.random() < 0.2:
        return rng.choice(edge_times(now)).isoformat()
    if rng.random() < 0.5:
        start = datetime(2018, 5, 1, tzinfo=UTC)
        moment = start + timedelta(seconds=rng.randrange(200 * 86400))
    else:
        moment = now - timedelta(seconds=rng.randrange(300 * 86400))
    return moment.isoformat()


@dataclass(frozen=True)
class Villages:
    codes: list[str]
    by_county: dict[str, list[str]]

    @classmethod
    def of(cls, codes: list[str]) -> "Villages":
        by_county: dict[str, list[str]] = {}
        for code in codes:
            by_county.setdefault(code[:6], []).append(code)
        return cls(codes, by_county)

    def other_than(self, rng: random.Random, code: str) -> str:
        """Another village of the same county, or any village if it has none."""
        same = self.by_county.get(code[:6], [])
        if len(same) < 2:
            return rng.choice(self.codes)
        pick = rng.randrange(len(same) - 1)
        return same[pick] if same[pick] != code else same[-1]


def next_event(
    rng: random.Random, ledger: Ledger, villages: Villages, now: datetime
) -> dict[str, Any]:
    accepted, visits = ledger.accepted, ledger.visits
    roll = rng.random()
    if accepted and roll < 0.10:
        return rng.choice(accepted)  # a repeat: must count once
    if visits and roll < 0.16:
        return events.voided(rng.choice(visits))
    if visits and roll < 0.22:
        target = rng.choice(visits)
        return events.reattributed(target, villages.other_than(rng, target["unit_code"]))
    if roll < 0.26:
        return events.incident(rng.choice(villages.codes), occurred_at=random_time(rng, now))
    return events.visit(
        rng.choice(villages.codes),
        destination=rng.choice(["county", "city", "province", "national"]),
        headcount=rng.choice([1, 2, 4, 5, 6, 30, 50, 51]),  # each threshold's both sides
        skip_level=rng.random() < 0.2,
        non_reception_site=rng.random() < 0.05,
        occurred_at=random_time(rng, now),
    )


def narrower_correction(rng: random.Random, ledger: Ledger, villages: Villages) -> dict[str, Any]:
    """A correction as the narrower key's desk sends it: mostly of a visit first posted in its
    unit (it may have been moved out since), else of any; a re-attribution to any village."""
    home = ledger.home_visits if ledger.home_visits and rng.random() < 0.6 else ledger.visits
    target = rng.choice(home)
    if rng.random() < 0.4:
        return events.voided(target)
    return events.reattributed(target, villages.other_than(rng, target["unit_code"]))


async def post(client: httpx.AsyncClient, event: dict[str, Any], *, key: str | None = None) -> str:
    """Post with the client's key, or another; a refusal for the scope (403) is expected only
    with another key."""
    headers = {"Authorization": f"Bearer {key}"} if key else None
    try:
        response = await client.post("/v1/events", json=event, headers=headers)
    except httpx.TransportError:
        return "unknown"
    if response.status_code in (200, 202):
        return "ok"
    if response.status_code in (503, 429) or (key and response.status_code == 403):
        return "failed"
    if response.status_code == 504:  # the commit's outcome is unknown to the service too
        return "unknown"
    raise AssertionError(f"unexpected answer {response.status_code}: {response.text}")


async def run_load(
    *,
    base_url: str,
    key: str,
    villages: list[str],
    seconds: float,
    workers: int,
    seed: int,
    narrower_key: tuple[str, str] | None = None,
) -> Ledger:
    """`narrower_key`: (the key, the code prefix of its scope unit)."""
    ledger = Ledger(home=narrower_key[1] if narrower_key else None)
    choices = Villages.of(villages)
    now = system_now()
    headers = {"Authorization": f"Bearer {key}"}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def worker(client: httpx.AsyncClient, number: int) -> None:
        # A generator per worker: what one worker draws does not depend on how the others'
        # requests interleave with its own.
        rng = random.Random(seed + number)
        while loop.time() < deadline:
            other_key = None
            if narrower_key and ledger.visits and rng.random() < 0.1:
                event, other_key = narrower_correction(rng, ledger, choices), narrower_key[0]
            else:
                event = next_event(rng, ledger, choices, now)
            started = loop.time()
            outcome = await post(client, event, key=other_key)
            if outcome != "unknown":
                ledger.slowest = max(ledger.slowest, loop.time() - started)
            if other_key:
                ledger.scoped[outcome] += 1
            ledger.record(event, outcome)

    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=5) as client:
        await asyncio.gather(*(worker(client, number) for number in range(workers)))
    return ledger
