"""A small reference model of the three-no rules, written straight from docs/domain.md sections
3, 4 and 7 with no code shared with the services (not even the registry: the model reads its own
unit tree from the registry files): given everything that was accepted, what is each unit's
status in each period, what are its work records there (the slots its own meetings fell in, the
ratings of its subtree), and what became of each correction?

An accepted event may carry `_scope`, the scope unit of the key that sent it: None (or no
`_scope` at all) for a key that covers everything, or `NO_KEY` for a key unknown to the system;
and `_accepted_at`, when intake accepted it. Corrections are taken by `_accepted_at`, then by
event id among those accepted at the same instant; without it, in the order given.
"""

import calendar
import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

# docs/domain.md section 3, the default rule table.
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
CORRECTIONS = ("event_voided", "event_reattributed")
WORK_RECORDS = ("screening_meeting", "satisfaction_rating")
# docs/domain.md section 7, the default cadence: a slot is named by its first day.
CADENCE = {"county": "month", "township": "half_month", "village": "week"}
NO_KEY = "no such key"
Parents = dict[str, tuple[str, str | None]]  # code -> (level, parent_code)


def unit_tree(*registry_files: str) -> Parents:
    """The units of registry files (CSV: code,name,level,parent_code) as the model sees them,
    a later file's line for a unit replacing an earlier one (a move)."""
    tree: Parents = {}
    for text in registry_files:
        for row in csv.DictReader(io.StringIO(text)):
            tree[row["code"]] = (row["level"], row["parent_code"] or None)
    return tree


@dataclass(frozen=True)
class NamedPeriod:
    """A campaign period as its file gives it: Asia/Shanghai dates, both ends included."""

    id: str
    first_day: date
    last_day: date

    def holds(self, moment: datetime) -> bool:
        return self.first_day <= moment.astimezone(SHANGHAI).date() <= self.last_day


def named_periods(spec: dict[str, Any], *, today: date) -> list[NamedPeriod]:
    """The periods of a campaign file (its YAML, loaded): those listed, and a calendar year
    for each year from `calendar_years_from` up to today's."""
    listed = [
        NamedPeriod(str(p["id"]), day_of(p["start"]), day_of(p["end"])) for p in spec["periods"]
    ]
    first_year = spec.get("calendar_years_from") or today.year + 1
    years = [
        NamedPeriod(str(year), date(year, 1, 1), date(year, 12, 31))
        for year in range(first_year, today.year + 1)
        if str(year) not in {p.id for p in listed}
    ]
    return listed + years


def day_of(value: date | str) -> date:
    """A date as YAML loads it: a date, or a string where the file quoted it."""
    return value if isinstance(value, date) else date.fromisoformat(value)


def in_trailing_12_months(moment: datetime, now: datetime) -> bool:
    """(now less 12 calendar months, now], counted on Shanghai's wall clock (no summer time
    there); 29 February a year on is 28 February."""
    local_now = now.astimezone(SHANGHAI).replace(tzinfo=None)
    last_day = calendar.monthrange(local_now.year - 1, local_now.month)[1]
    start = local_now.replace(year=local_now.year - 1, day=min(local_now.day, last_day))
    return start < moment.astimezone(SHANGHAI).replace(tzinfo=None) <= local_now


@dataclass
class Expected:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CRITERIA, 0))
    people: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CRITERIA, 0))
    event_ids: set[str] = field(default_factory=set)

    @property
    def three_no(self) -> bool:
        return not self.event_ids


def criteria_met(event: dict[str, Any], level: str) -> list[str]:
    if event["type"] in WORK_RECORDS:
        return []  # evidence beside the status, never against it
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


def within(unit: str, scope: str | None, parents: Parents) -> bool:
    """Whether the scope unit is the unit or one of its ancestors (None: everywhere)."""
    if scope is None:
        return True
    code: str | None = unit
    while code is not None:
        if code == scope:
            return True
        code = parents[code][1] if code in parents else None
    return False


def attribution(
    event: dict[str, Any], corrections: list[dict[str, Any]], parents: Parents
) -> tuple[str, bool, dict[str, bool]]:
    """(unit, voided, whether each correction took effect), the corrections taken in the order
    they were accepted. One takes effect when a known key sent it, the event is not voided yet,
    and the key's scope holds where the event is at that moment (and, for a re-attribution, the
    new unit). So the last re-attribution accepted wins, and a void is final."""
    unit, voided = event["unit_code"], False
    took_effect: dict[str, bool] = {}
    for correction in sorted(corrections, key=lambda c: c["_accepted"]):
        scope = correction.get("_scope")
        allowed = (
            scope != NO_KEY
            and not voided
            and within(unit, scope, parents)
            and (
                correction["type"] == "event_voided"
                or within(correction["new_unit_code"], scope, parents)
            )
        )
        took_effect[correction["event_id"]] = allowed
        if allowed and correction["type"] == "event_voided":
            voided = True
        elif allowed:
            unit = correction["new_unit_code"]
    return unit, voided, took_effect


def acceptance_order(event: dict[str, Any], position: int) -> tuple[Any, ...]:
    """Where a correction stands among its target's others: its acceptance time, then its event
    id for those accepted at the same instant (ids in their canonical lowercase form sort as the
    UUIDs do); its position when no time is given."""
    if "_accepted_at" in event:
        return (event["_accepted_at"], event["event_id"])
    return (position,)


def first_acceptances(
    accepted: list[dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]], set[str]]:
    """(counting events by id, corrections by target, ids of corrections). The same event
    posted again is a duplicate: it counts once, and a correction keeps the place of its first
    acceptance."""
    facts: dict[str, dict[str, Any]] = {}
    corrections: dict[str, list[dict[str, Any]]] = defaultdict(list)
    correction_ids: set[str] = set()
    seen: set[str] = set()
    for order, event in enumerate(accepted):
        if event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        if event["type"] in CORRECTIONS:
            place = acceptance_order(event, order)
            corrections[event["target_event_id"]].append(event | {"_accepted": place})
            correction_ids.add(event["event_id"])
        else:
            facts[event["event_id"]] = event
    return facts, corrections, correction_ids


def correction_states(accepted: list[dict[str, Any]], *, parents: Parents) -> dict[str, str]:
    """Each correction's state: `pending` while its target never came, `refused` when its
    target is a correction or it took no effect, else `applied`."""
    facts, corrections, correction_ids = first_acceptances(accepted)
    states = {}
    for target, targeting in corrections.items():
        if target in facts:
            _, _, took_effect = attribution(facts[target], targeting, parents)
            for correction_id, applied in took_effect.items():
                states[correction_id] = "applied" if applied else "refused"
            continue
        for correction in targeting:
            refused = target in correction_ids or correction.get("_scope") == NO_KEY
            states[correction["event_id"]] = "refused" if refused else "pending"
    return states


def statuses(
    accepted: list[dict[str, Any]],
    *,
    parents: Parents,
    periods: list[NamedPeriod],
    now: datetime,
) -> dict[tuple[str, str], Expected]:
    """Only (unit, period) pairs with a counting event appear; every other one is clean."""
    facts, corrections, _ = first_acceptances(accepted)
    result: dict[tuple[str, str], Expected] = defaultdict(Expected)
    for event_id, event in facts.items():
        unit, voided, _ = attribution(event, corrections[event_id], parents)
        if voided:
            continue
        moment = datetime.fromisoformat(event["occurred_at"])
        holding = [p.id for p in periods if p.holds(moment)]
        if in_trailing_12_months(moment, now):
            holding.append("rolling")
        code: str | None = unit
        while code is not None:
            level, parent = parents[code]
            if level in COLLECTIVE:
                for criterion in criteria_met(event, level):
                    for period in holding:
                        expected = result[(code, period)]
                        expected.counts[criterion] += 1
                        expected.people[criterion] += event.get("headcount", 0)
                        expected.event_ids.add(event_id)
            code = parent
    return {key: value for key, value in result.items() if value.event_ids}


@dataclass
class ExpectedIndicators:
    meetings_held: set[date] = field(default_factory=set)
    ratings: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))


def slot_of(moment: datetime, cadence: str) -> date:
    """The first day of the slot the moment falls in, on Shanghai's calendar: the Monday of
    its ISO week, the 1st or the 16th of its month, or the 1st."""
    day = moment.astimezone(SHANGHAI).date()
    if cadence == "week":
        return day - timedelta(days=day.weekday())
    if cadence == "half_month":
        return day.replace(day=1) if day.day <= 15 else day.replace(day=16)
    return day.replace(day=1)


def indicators(
    accepted: list[dict[str, Any]],
    *,
    parents: Parents,
    periods: list[NamedPeriod],
    now: datetime,
) -> dict[tuple[str, str], ExpectedIndicators]:
    """Only (unit, period) pairs with a meeting or a rating appear. A meeting counts at its own
    unit only, in the slot of that unit's level; a rating at the unit and every ancestor at a
    campaign level."""
    facts, corrections, _ = first_acceptances(accepted)
    result: dict[tuple[str, str], ExpectedIndicators] = defaultdict(ExpectedIndicators)
    for event_id, event in facts.items():
        if event["type"] not in WORK_RECORDS:
            continue
        unit, voided, _ = attribution(event, corrections[event_id], parents)
        if voided:
            continue
        moment = datetime.fromisoformat(event["occurred_at"])
        holding = [p.id for p in periods if p.holds(moment)]
        if in_trailing_12_months(moment, now):
            holding.append("rolling")
        if event["type"] == "screening_meeting":
            level = parents[unit][0]
            for period in holding if level in CADENCE else []:
                result[(unit, period)].meetings_held.add(slot_of(moment, CADENCE[level]))
            continue
        code: str | None = unit
        while code is not None:
            level, parent = parents[code]
            if level in COLLECTIVE:  # the campaign's levels
                for period in holding:
                    result[(code, period)].ratings[(event["source"], event["rating"])] += 1
            code = parent
    return dict(result)
