"""Early warnings (docs/domain.md section 8) found in a set of visits: the pure part, without I/O.

Every moment is a visit's `occurred_at`; "before" orders visits by (occurred_at, event_id). A
warning's id is uuid5 of its kind, its unit and the visit that causes it, so the same visits
always give the same warnings, however often and in whatever batches they are applied.

- **near threshold**: a visit to a destination that a level's collective rule counts, with a
  headcount below the least that meets the rule (the threshold when compared `ge`, one more
  when `gt`) by at most `margin[level]` people, warns every unit of that level on its chain.
  Cause: the visit.
- **repeat petitioner**: the visits carrying the same (keyed-hash) petitioner reference, per
  county. A visit V warns when it and the visits before it dated within the `days` days up to
  it (occurred_at > V's - days) number at least `visits`; the warning is on V's unit and names
  all of them. Visits on day 0, 45 and 89 warn; on day 0, 45 and 90 (91 calendar days) do not.
  Cause: V (a fourth visit in the window raises a second warning, naming four).
- **rising**: for a unit, the visits to its subtree. At moment t, `recent(t)` counts those dated
  in (t - recent_days, t] and `baseline(t)` those in (t - recent_days - baseline_days,
  t - recent_days]; the unit is rising at t when recent(t) >= minimum and
  recent(t) >= factor x the monthly average, i.e.
  recent(t) x baseline_days >= factor x baseline(t) x recent_days (a "month" is recent_days).
  A visit V is an onset when the unit is rising at V's moment and at no visit before V dated
  within recent_days before it: a rising spell raises one warning, and a new one only after
  recent_days without a visit at which the unit was rising. Cause: the onset visit; it names
  the visits of recent(t).

What has been reported may be corrected. The warnings raised are those found in the visits as
reported (each at the unit it was reported for, voided or not) and those found in the visits
as they stand (not voided, at the unit attributed now); those not found in the latter are
cleared. So a void clears the warnings its visit alone raised, a warning that other visits
still carry stays (naming those), and the set depends only on the visits, not on the order or
batches they were applied in.
"""

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from operator import attrgetter
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from shared.campaign import Comparison, LevelRules
from shared.early_warning import WarningKind, WarningRules
from shared.levels import Destination, Level

DAY = 86_400_000_000  # microseconds
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
WARNING_NAMESPACE = uuid5(NAMESPACE_URL, "urn:sanwu:early-warning")

Chain = Callable[[str], Sequence[tuple[str, Level]]]


@dataclass(frozen=True, slots=True)
class Visit:
    """A visit placed at one unit (as reported, or as attributed now)."""

    event_id: UUID
    unit_code: str
    occurred_at: datetime
    destination: Destination | None
    headcount: int
    petitioner_ref: str | None
    # (occurred_at in microseconds since the epoch, event_id as an integer): sorts "before".
    order: tuple[int, int] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "order", (micros(self.occurred_at), self.event_id.int))

    @property
    def at(self) -> int:
        return self.order[0]


@dataclass(frozen=True, slots=True)
class Found:
    """A warning the visits give: `scope` is what it is looked up by (the visit for near
    threshold, the petitioner's hash for repeat, the unit for rising), `cause_at` the moment
    of the visit that causes it."""

    warning_id: UUID
    kind: WarningKind
    unit_code: str
    scope: str
    cause_at: datetime
    event_ids: tuple[UUID, ...]
    detail: dict[str, Any] = field(hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class Expected:
    """A warning as the visits say it should be: `active`, or raised and cleared."""

    found: Found
    active: bool


def warning_id(kind: WarningKind, unit_code: str, cause: UUID) -> UUID:
    return uuid5(WARNING_NAMESPACE, f"{kind.value}:{unit_code}:{cause}")


def micros(moment: datetime) -> int:
    """Microseconds since the epoch: exact, unlike a float timestamp."""
    return (moment - EPOCH) // ONE_MICROSECOND


def first_counted(rules: LevelRules) -> int:
    """The least headcount the level's collective rule counts."""
    collective = rules.collective
    return collective.threshold + (1 if collective.comparison is Comparison.gt else 0)


class WarningFinder:
    def __init__(
        self,
        *,
        rules: WarningRules,
        level_rules: Mapping[Level, LevelRules],
        chain: Chain,
        county_of: Callable[[str], str],
    ) -> None:
        self.rules = rules
        self.level_rules = level_rules
        self.chain = chain
        self.county_of = county_of
        # Per level: the headcounts that warn (low <= headcount < least) and the destinations.
        self._near: dict[Level, tuple[int, int, frozenset[Destination]]] = {}
        for level, level_rule in level_rules.items():
            margin = rules.near_threshold.margin.get(level, 0)
            if margin > 0:
                least = first_counted(level_rule)
                self._near[level] = (least - margin, least, level_rule.collective.destinations)
        self._near_any = {
            (destination, headcount)
            for low, least, destinations in self._near.values()
            for destination in destinations
            for headcount in range(max(low, 1), least)
        }
        self._near_details: dict[tuple[Level, int, Destination | None], dict[str, Any]] = {}
        factor = Fraction(rules.rising.factor)
        self._factor = (factor.numerator, factor.denominator)

    # --- near threshold -------------------------------------------------------------------

    def near_threshold(self, visit: Visit) -> list[Found]:
        if (visit.destination, visit.headcount) not in self._near_any:
            return []
        found = []
        for code, level in self.chain(visit.unit_code):
            near = self._near.get(level)
            if near is None:
                continue
            low, least, destinations = near
            if visit.destination in destinations and low <= visit.headcount < least:
                kind = WarningKind.near_threshold
                detail = self._near_detail(level, visit, least)
                found.append(self._found(kind, code, str(visit.event_id), visit, [visit], detail))
        return found

    def _near_detail(self, level: Level, visit: Visit, least: int) -> dict[str, Any]:
        """One dict, never changed, for every warning of a level, headcount and destination:
        a national rebuild finds hundreds of thousands of them."""
        key = (level, visit.headcount, visit.destination)
        detail = self._near_details.get(key)
        if detail is None:
            detail = self._near_details[key] = {
                "level": level.value,
                "headcount": visit.headcount,
                "destination": visit.destination.value if visit.destination else None,
                "counted_from": least,
            }
        return detail

    # --- repeat petitioner ----------------------------------------------------------------

    def repeat_petitioner(self, visits: Iterable[Visit]) -> list[Found]:
        """`visits`: those of one petitioner (any county)."""
        by_county: dict[str, list[Visit]] = {}
        for visit in visits:
            if visit.petitioner_ref is not None:
                by_county.setdefault(self.county_of(visit.unit_code), []).append(visit)
        rule = self.rules.repeat_petitioner
        span = rule.days * DAY
        found = []
        for county, group in by_county.items():
            group.sort(key=by_order)
            first = 0
            for last, visit in enumerate(group):
                while group[first].at <= visit.at - span:
                    first += 1
                window = group[first : last + 1]
                if len(window) >= rule.visits:
                    detail = {"county_code": county, "visits": len(window), "days": rule.days}
                    scope = str(visit.petitioner_ref)
                    kind = WarningKind.repeat_petitioner
                    found.append(self._found(kind, visit.unit_code, scope, visit, window, detail))
        return found

    # --- rising ---------------------------------------------------------------------------

    def rising(
        self,
        unit_code: str,
        visits: Sequence[Visit],
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        times: Sequence[int] | None = None,
    ) -> list[Found]:
        """The onsets among `visits` (those of the unit's subtree, sorted by `order`) dated in
        [since, until]. The visits must include every one dated after
        since - 2 x recent_days - baseline_days. `times`: their moments (`Visit.at`), if the
        caller has them."""
        if len(visits) < self.rules.rising.minimum:
            return []  # no window can hold the minimum (most villages, nationwide)
        if times is None:
            times = [v.order[0] for v in visits]
        return [
            self._rising_found(
                unit_code,
                visits[moment].event_id,
                visits[moment].occurred_at,
                [v.event_id for v in visits[recent_start:end]],
                recent=end - recent_start,
                baseline=before,
            )
            for moment, recent_start, end, before in self.onsets(times, since=since, until=until)
        ]

    def rising_at(
        self,
        unit_code: str,
        times: Sequence[int],
        event_ids: Sequence[UUID],
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Found]:
        """`rising` of visits given as their moments (`Visit.at`, in order) and their ids."""
        return [
            self._rising_found(
                unit_code,
                event_ids[moment],
                EPOCH + times[moment] * ONE_MICROSECOND,
                event_ids[recent_start:end],
                recent=end - recent_start,
                baseline=before,
            )
            for moment, recent_start, end, before in self.onsets(times, since=since, until=until)
        ]

    def onsets(
        self, times: Sequence[int], *, since: datetime | None, until: datetime | None
    ) -> Iterator[tuple[int, int, int, int]]:
        """The rule itself, on the moments of a unit's visits in order: for each onset dated
        in [since, until], the index of its visit, the start and end of the visits in its
        recent window, and how many its baseline holds."""
        rule = self.rules.rising
        length, minimum = len(times), rule.minimum
        if length < minimum:
            return
        recent = rule.recent_days * DAY
        reach = recent + rule.baseline_days * DAY
        numerator, denominator = self._factor
        # recent x baseline_days >= factor x baseline x recent_days, in integers
        weight_recent = rule.baseline_days * denominator
        weight_baseline = numerator * rule.recent_days
        first = None if since is None else micros(since)
        last = None if until is None else micros(until)
        last_rising: int | None = None
        # A moment whose own windows reach before the visits given is not looked at.
        index = 0 if first is None else bisect_right(times, first - recent)
        # Where each window starts only moves on as the moments do.
        recent_start = baseline_start = 0
        # Whether the unit is rising depends on the moment only, and of visits at one moment
        # only the first can be an onset: each moment is looked at once.
        while index < length:
            at = times[index]
            end = index + 1
            while end < length and times[end] == at:
                end += 1
            moment, index = index, end
            while times[recent_start] <= at - recent:
                recent_start += 1
            count = end - recent_start
            if count < minimum:
                continue
            while times[baseline_start] <= at - reach:
                baseline_start += 1
            before = recent_start - baseline_start
            if count * weight_recent < before * weight_baseline:
                continue
            onset = last_rising is None or last_rising <= at - recent
            last_rising = at
            if not onset or (first is not None and at < first) or (last is not None and at > last):
                continue
            yield moment, recent_start, end, before

    def _rising_found(
        self,
        unit_code: str,
        cause: UUID,
        cause_at: datetime,
        named: Iterable[UUID],
        *,
        recent: int,
        baseline: int,
    ) -> Found:
        rule = self.rules.rising
        return Found(
            warning_id=warning_id(WarningKind.rising, unit_code, cause),
            kind=WarningKind.rising,
            unit_code=unit_code,
            scope=unit_code,
            cause_at=cause_at,
            event_ids=tuple(sorted(named, key=UUID_ORDER)),
            detail={
                "recent": recent,
                "baseline": baseline,
                "recent_days": rule.recent_days,
                "baseline_days": rule.baseline_days,
            },
        )

    def _found(
        self,
        kind: WarningKind,
        unit_code: str,
        scope: str,
        cause: Visit,
        named: Sequence[Visit],
        detail: dict[str, Any],
    ) -> Found:
        return Found(
            warning_id=warning_id(kind, unit_code, cause.event_id),
            kind=kind,
            unit_code=unit_code,
            scope=scope,
            cause_at=cause.occurred_at,
            event_ids=tuple(sorted((v.event_id for v in named), key=UUID_ORDER)),
            detail=detail,
        )


by_order = attrgetter("order")
UUID_ORDER = attrgetter("int")  # sorts UUIDs as they compare, without UUID.__lt__ in Python


def expected(reported: Iterable[Found], standing: Iterable[Found]) -> dict[UUID, Expected]:
    """Warnings found in the visits as reported and as they stand: active when found in the
    latter (named as there), otherwise raised and cleared."""
    result = {f.warning_id: Expected(f, active=False) for f in reported}
    result.update({f.warning_id: Expected(f, active=True) for f in standing})
    return result
