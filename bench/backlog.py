"""A county's backlog in the ledger test's mix (`tests/support/ledger.py`), for the
sustained-pipeline stage: new visits to every level's destination with headcounts on both sides
of each threshold, some jumping levels or found at non-reception sites, dated on the periods'
edges, in the plan's 2018 period or in the trailing 12 months; repeats of events already
posted; voids and re-attributions of visits; incidents; and also the county's meetings and
ratings, and visits carrying a petitioner's reference, most of them petitioners seen lately (so
every kind of early warning is raised)."""

import calendar
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

BATCH_SIZE = 1000  # events a batch posted
SHANGHAI = ZoneInfo("Asia/Shanghai")
TICK = timedelta(microseconds=1)


@dataclass
class Mix:
    """Shares of the events posted; the rest are new visits (as in the ledger test, plus the
    work records a county also reports)."""

    repeats: float = 0.10
    voids: float = 0.06
    reattributions: float = 0.06
    incidents: float = 0.03
    meetings: float = 0.15
    ratings: float = 0.05
    with_petitioner: float = 0.3  # of the visits: a petitioner's reference
    returning: float = 0.6  # of those: a petitioner seen lately


def edge_times(now: datetime) -> list[datetime]:
    """Moments on the edges of periods: the first and last instant of the plan's 2018 period,
    the instants either side of it, the first instant of 2019; and either side of the rolling
    window's start, an hour in (so it stays inside while a run lasts) and just out. The fault
    tests' ledger posts on the same edges."""
    first, after = datetime(2018, 4, 30, tzinfo=SHANGHAI), datetime(2019, 1, 1, tzinfo=SHANGHAI)
    local = now.astimezone(SHANGHAI)
    day = min(local.day, calendar.monthrange(local.year - 1, local.month)[1])
    window_start = local.replace(year=local.year - 1, day=day)
    return [
        first - TICK,
        first,
        after - TICK,
        after,
        window_start + timedelta(hours=1),
        window_start - TICK,
    ]


def _random_time(rng: random.Random, now: datetime, edges: list[datetime]) -> str:
    """As the ledger's `random_time`: on an edge, in the plan's 2018 period or in the trailing
    12 months."""
    if rng.random() < 0.2:
        return rng.choice(edges).isoformat()
    if rng.random() < 0.5:
        start = datetime(2018, 5, 1, tzinfo=UTC)
        return (start + timedelta(seconds=rng.randrange(200 * 86400))).isoformat()
    return (now - timedelta(seconds=rng.randrange(300 * 86400))).isoformat()


def ledger_mix(
    count: int,
    villages: list[str],
    *,
    seed: int,
    now: datetime,
    settled: int,
    mix: Mix | None = None,
) -> list[list[dict[str, Any]]]:
    """`count` events in batches of BATCH_SIZE, in the ledger test's mix over `villages` (one
    county's). Repeats and corrections name events of batches at least `settled` batches
    earlier, which intake has answered by then (a correction of an event not seen yet is valid
    too, but rarer)."""
    mix = mix or Mix()
    rng = random.Random(seed)
    edges = edge_times(now)
    batches: list[list[dict[str, Any]]] = []
    posted: list[dict[str, Any]] = []  # of batches `settled` back and earlier
    visits: list[dict[str, Any]] = []
    petitioners = 0

    def new_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def event() -> dict[str, Any]:
        nonlocal petitioners
        roll = rng.random()
        corrected = mix.repeats + mix.voids + mix.reattributions
        if not visits:  # nothing to repeat or correct yet: the new events' shares
            roll = corrected + (1 - corrected) * roll
        bound = mix.repeats
        if posted and roll < bound:
            return rng.choice(posted)
        bound += mix.voids + mix.reattributions
        if visits and roll < bound:
            target = rng.choice(visits)
            correction = {
                "event_id": new_id(),
                "unit_code": target["unit_code"],
                "occurred_at": now.isoformat(),
                "target_event_id": target["event_id"],
            }
            if roll < bound - mix.reattributions:
                return correction | {"type": "event_voided", "reason": "核查认定不属实"}
            moved_to = rng.choice(villages)
            return correction | {
                "type": "event_reattributed",
                "new_unit_code": moved_to if moved_to != target["unit_code"] else villages[0],
                "reason": "改属地",
            }
        base = {
            "event_id": new_id(),
            "unit_code": rng.choice(villages),
            "occurred_at": _random_time(rng, now, edges),
        }
        bound += mix.incidents
        if roll < bound:
            return base | {"type": "incident", "kind": "self_harm", "summary": "因信访问题引发"}
        bound += mix.meetings
        if roll < bound:
            found = rng.randrange(4)
            return base | {
                "type": "screening_meeting",
                "attendees": rng.randrange(3, 20),
                "disputes_found": found,
                "disputes_resolved": rng.randrange(found + 1),
            }
        bound += mix.ratings
        if roll < bound:
            return base | {
                "type": "satisfaction_rating",
                "rating": rng.choice(["satisfied", "basically_satisfied", "dissatisfied"]),
                "source": rng.choice(["petitioner", "third_party", "representative"]),
            }
        visit = base | {
            "type": "petition_visit",
            "destination_level": rng.choice(["county", "city", "province", "national"]),
            "headcount": rng.choice([1, 2, 4, 5, 6, 30, 50, 51]),
            "skip_level": rng.random() < 0.2,
            "non_reception_site": rng.random() < 0.05,
        }
        if rng.random() < mix.with_petitioner:
            if petitioners and rng.random() < mix.returning:
                ref = rng.randrange(max(0, petitioners - 500), petitioners)
            else:
                ref, petitioners = petitioners, petitioners + 1
            visit["petitioner_ref"] = f"bench-petitioner-{ref}"
        return visit

    for number in range(0, count, BATCH_SIZE):
        if len(batches) >= settled:
            for earlier in batches[-settled]:
                posted.append(earlier)
                if earlier["type"] == "petition_visit":
                    visits.append(earlier)
        batches.append([event() for _ in range(min(BATCH_SIZE, count - number))])
    return batches
