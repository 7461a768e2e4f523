"""A small reference model of the three-no rules, written straight from domain.md section 3
with no code shared with the evaluation service: given everything that was accepted, what is
each unit's status in each period?"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.campaign import Campaign, in_rolling_window

# domain.md section 3, the default rule table.
SKIP_LEVEL_DESTINATIONS = {
    "county": {"national"},
    "township": {"province", "national"},
    "village": {"city", "province", "national"},
}
COLLECTIVE = {  # (destinations, headcount test)
    "county": ({"city", "province", "national"}, lambda n: n > 50),
    "township": ({"city", "province", "national"}, lambda n: n >= 5),
    "village": ({"county", "city", "province", "national"}, lambda n: n >= 5),
}
CRITERIA = ("skip_level", "non_reception_site", "collective", "incident")


@dataclass
class Expected:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CRITERIA, 0))
    people: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CRITERIA, 0))
    event_ids: set[str] = field(default_factory=set)

    @property
    def three_no(self) -> bool:
        return not self.event_ids


def criteria_met(event: dict[str, Any], level: str) -> list[str]:
    if event["type"] in ("incident", "public_opinion"):
        return ["incident"]
    met = []
    destination, headcount = event["destination_level"], event["headcount"]
    if event.get("skip_level") and destination in SKIP_LEVEL_DESTINATIONS[level]:
        met.append("skip_level")
    if event.get("non_reception_site"):
        met.append("non_reception_site")
    destinations, enough = COLLECTIVE[level]
    if destination in destinations and enough(headcount):
        met.append("collective")
    return met


def attribution(event: dict[str, Any], corrections: list[dict[str, Any]]) -> tuple[str, bool]:
    """Any void voids; of several re-attributions the latest decision (occurred_at, then
    acceptance) wins."""
    voided = any(c["type"] == "event_voided" for c in corrections)
    moves = [c for c in corrections if c["type"] == "event_reattributed"]
    if not moves:
        return event["unit_code"], voided
    latest = max(moves, key=lambda c: (datetime.fromisoformat(c["occurred_at"]), c["_accepted"]))
    return latest["new_unit_code"], voided


def statuses(
    accepted: list[dict[str, Any]],
    *,
    parents: dict[str, tuple[str, str | None]],  # code -> (level, parent_code)
    campaign: Campaign,
    now: datetime,
) -> dict[tuple[str, str], Expected]:
    """Only (unit, period) pairs with a counting event appear; every other one is clean."""
    facts: dict[str, dict[str, Any]] = {}
    corrections: dict[str, list[dict[str, Any]]] = defaultdict(list)
    seen: set[str] = set()
    for order, event in enumerate(accepted):
        # The same event posted again is a duplicate: it counts once, and a correction keeps
        # the place of its first acceptance.
        if event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        if event["type"] in ("event_voided", "event_reattributed"):
            corrections[event["target_event_id"]].append(event | {"_accepted": order})
        else:
            facts[event["event_id"]] = event
    result: dict[tuple[str, str], Expected] = defaultdict(Expected)
    for event_id, event in facts.items():
        unit, voided = attribution(event, corrections[event_id])
        if voided:
            continue
        moment = datetime.fromisoformat(event["occurred_at"])
        periods = [p.id for p in campaign.periods if p.contains(moment)]
        if in_rolling_window(moment, now):
            periods.append("rolling")
        code: str | None = unit
        while code is not None:
            level, parent = parents[code]
            if level in COLLECTIVE:
                for criterion in criteria_met(event, level):
                    for period in periods:
                        expected = result[(code, period)]
                        expected.counts[criterion] += 1
                        expected.people[criterion] += event.get("headcount", 0)
                        expected.event_ids.add(event_id)
            code = parent
    return {key: value for key, value in result.items() if value.event_ids}
