"""Where an event counts: the pure part of the evaluation, without I/O.

An event counts against the units on its attributed chain that the rule table of their level
says it meets, in every period containing its moment, and in the rolling period while it lies
in the trailing 12 months. A work record counts the same way in the unit's indicators: a
meeting in its own unit's slot (the cadence of that unit's level), a rating at every unit of
its chain.
"""

import dataclasses
from bisect import bisect_right
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from services.evaluation.records import Effect, StatusWindow
from services.evaluation.rules import Facts, criteria_met, people_of
from shared.cadence import Cadence, slot_start
from shared.campaign import SHANGHAI, Campaign, Period, rolling_window
from shared.levels import Level
from shared.registry.cache import UnitRegistry
from shared.status import ROLLING

ONE_TICK = timedelta(microseconds=1)  # the rolling window excludes its start
MEMO_LIMIT = 100_000
UNKNOWN: Any = object()  # not looked up yet (None is an answer: no cadence)


class EffectCalculator:
    def __init__(self, *, campaign: Campaign, registry: UnitRegistry) -> None:
        self.campaign = campaign
        self.registry = registry
        self._chains: dict[str, tuple[tuple[str, Level], ...]] = {}
        self._chains_version = -1
        self._cadences: dict[str, Cadence | None] = {}  # by unit, cleared with the chains
        self._met: dict[Facts, dict[Level, int]] = {}
        # The window start of an expiry pass (a lower bound of the latest one): effects older
        # than it left the rolling period already.
        self._rolling_passed: datetime | None = None
        self._periods: tuple[Period, ...] = ()  # what `_period_stretches` were worked out from
        self._period_stretches: tuple[
            list[datetime], list[list[tuple[str, datetime, datetime]]]
        ] = ([], [[]])

    def effects_for(
        self, *, event_id: UUID, facts: Facts, unit_code: str, occurred_at: datetime
    ) -> list[Effect]:
        """The units on the chain of `unit_code` the event counts against, each judged by the
        rules of its own level."""
        if facts.is_work_record:
            return self._work_record_effects(
                event_id=event_id, facts=facts, unit_code=unit_code, occurred_at=occurred_at
            )
        people = people_of(facts)
        met = self._criteria(facts)
        return [
            Effect(event_id, code, met[level], people, occurred_at)
            for code, level in self.chain(unit_code)
            if met[level]
        ]

    def _work_record_effects(
        self, *, event_id: UUID, facts: Facts, unit_code: str, occurred_at: datetime
    ) -> list[Effect]:
        chain = self.chain(unit_code)
        if facts.rating is not None and facts.source is not None:  # a rating
            source, rating = facts.source.value, facts.rating.value
            return [
                Effect(event_id, code, 0, 0, occurred_at, source=source, rating=rating)
                for code, _ in chain
            ]
        slot = self.meeting_slot(unit_code, occurred_at)
        if slot is None:
            return []
        return [Effect(event_id, unit_code, 0, 0, occurred_at, slot=slot)]

    def meeting_slot(self, unit_code: str, occurred_at: datetime) -> date | None:
        """The slot a meeting of `unit_code` at `occurred_at` falls in; none when the unit's
        level keeps no cadence. Only the unit's own meetings count, in its own level's slots."""
        cadence = self.cadence_of(unit_code)
        if cadence is None:
            return None
        # Not remembered: hashing a moment costs as much as converting it.
        return slot_start(occurred_at.astimezone(SHANGHAI).date(), cadence)

    def cadence_of(self, unit_code: str) -> Cadence | None:
        """The cadence of the unit's own level, if the unit is a campaign unit whose level
        keeps one (remembered with the chains)."""
        cadence = self._cadences.get(unit_code, UNKNOWN)
        if cadence is UNKNOWN or self._chains_version != self.registry.version:
            cadence = self._look_up_cadence(unit_code)
        return cadence

    def _look_up_cadence(self, unit_code: str) -> Cadence | None:
        chain = self.chain(unit_code)
        cadence = None
        if chain and chain[0][0] == unit_code:
            cadence = self.campaign.work_records.cadence.get(chain[0][1])
        if chain:
            self._cadences[unit_code] = cadence
        return cadence

    def chain(self, unit_code: str) -> tuple[tuple[str, Level], ...]:
        """The unit and its ancestors at campaign levels (cached until the registry changes)."""
        if self._chains_version != self.registry.version:
            self._chains.clear()
            self._cadences.clear()
            self._chains_version = self.registry.version
        chain = self._chains.get(unit_code)
        if chain is None:
            chain = self._look_up_chain(unit_code)
            if chain:
                if len(self._chains) >= MEMO_LIMIT:  # a nation's units would all stay
                    self._chains.clear()
                    self._cadences.clear()
                self._chains[unit_code] = chain
        return chain

    def _look_up_chain(self, unit_code: str) -> tuple[tuple[str, Level], ...]:
        """The unit's own pair before its parent's chain, which is remembered too: the villages
        of a township share their ancestors' pairs rather than each holding copies (a nation's
        worth of chains is memory)."""
        units = self.registry.ancestors(unit_code)
        if not units:
            return ()
        own, parents = units[0], units[1:]
        above = self.chain(parents[0].code) if parents else ()
        return ((unit_code, own.level), *above) if own.level in self.campaign.rules else above

    def _criteria(self, facts: Facts) -> dict[Level, int]:
        """`criteria_met` at every campaign level, remembered: many events share their facts."""
        met = self._met.get(facts)
        if met is None:
            if len(self._met) > MEMO_LIMIT:
                self._met.clear()
            rules = self.campaign.rules
            met = self._met[facts] = {
                level: int(criteria_met(facts, level, rules)) for level in rules
            }
        return met

    def windows_of(
        self, effects: Iterable[Effect], *, now: datetime
    ) -> dict[tuple[str, str], StatusWindow]:
        """Every (unit, period) an effect counts in at `now`: the named periods containing it,
        and the rolling period while it lies in the trailing 12 months that end now."""
        start = rolling_window(now)[0]
        return self._windows(effects, now=now, counts=lambda at: start < at <= now)

    def windows_to_recompute(
        self, effects: Iterable[Effect], *, now: datetime
    ) -> dict[tuple[str, str], StatusWindow]:
        """The (unit, period) pairs whose status may change when these effects are added or
        removed: those of `windows_of`, and the rolling period also for an effect dated after
        `now` (its unit is then remembered as pending) or one that left the window after the
        last expiry pass known here (that pass finds units through effect rows, which a
        correction may just have removed)."""
        since = self._rolling_passed
        if since is not None:
            since = min(since, rolling_window(now)[0])
        return self._windows(effects, now=now, counts=lambda at: since is None or at > since)

    def _windows(
        self, effects: Iterable[Effect], *, now: datetime, counts: Callable[[datetime], bool]
    ) -> dict[tuple[str, str], StatusWindow]:
        """The named periods containing each effect, and the rolling period where `counts`
        says so of the effect's moment."""
        start = rolling_window(now)[0]
        bounds, covering = self._named_periods()
        windows: dict[tuple[str, str], StatusWindow] = {}
        for effect in effects:
            unit_code, at = effect.unit_code, effect.occurred_at
            for period, starts_at, ends_at in covering[bisect_right(bounds, at)]:
                if (unit_code, period) not in windows:
                    windows[(unit_code, period)] = StatusWindow(
                        unit_code, period, starts_at, ends_at
                    )
            if (unit_code, ROLLING) not in windows and counts(at):
                windows[(unit_code, ROLLING)] = rolling_window_of(unit_code, start=start, now=now)
        return windows

    def _named_periods(self) -> tuple[list[datetime], list[list[tuple[str, datetime, datetime]]]]:
        """The campaign's named periods, for finding those containing a moment with one
        bisection: every period's start and end in order, and for each stretch between two of
        them (and before the first and after the last) the periods as (id, starts_at, ends_at)
        that contain it. Worked out again only when the campaign's periods change."""
        periods = self.campaign.periods
        if self._periods is not periods:
            named = [(p.id, p.starts_at, p.ends_at) for p in periods]
            bounds = sorted(
                {moment for _, starts_at, ends_at in named for moment in (starts_at, ends_at)}
            )
            # Stretch i is [bounds[i - 1], bounds[i]): a period contains all of it or none.
            covering = [[w for w in named if w[1] <= stretch < w[2]] for stretch in bounds]
            self._period_stretches = (bounds, [[], *covering])
            self._periods = periods
        return self._period_stretches

    def passed_rolling(self, window_start: datetime | None) -> None:
        """Note the window start of an expiry pass: effects older than it left the period."""
        if window_start is not None and (
            self._rolling_passed is None or window_start > self._rolling_passed
        ):
            self._rolling_passed = window_start

    def period_bounds(self, now: datetime) -> list[tuple[str, datetime, datetime | None]]:
        """Every period as (id, starts_at, ends_at); the rolling one ends at `now`."""
        bounds: list[tuple[str, datetime, datetime | None]] = [
            (p.id, p.starts_at, p.ends_at) for p in self.campaign.periods
        ]
        bounds.append((ROLLING, rolling_window(now)[0] + ONE_TICK, now + ONE_TICK))
        return bounds

    def county_of(self, unit_code: str) -> str:
        return self.registry.keying_unit(unit_code)

    def add_periods(self, campaign: Campaign) -> list[str]:
        """Take the periods `campaign` has and this one lacks (a new calendar year); the rules
        stay as loaded. Returns the ids added."""
        known = set(self.campaign.period_ids())
        added = [p for p in campaign.periods if p.id not in known]
        if added:
            periods = (*self.campaign.periods, *added)
            self.campaign = dataclasses.replace(self.campaign, periods=periods)
        return [p.id for p in added]


def rolling_window_of(unit_code: str, *, start: datetime, now: datetime) -> StatusWindow:
    """The rolling period's window (start, now]: an effect dated later counts from
    its own time on."""
    return StatusWindow(unit_code, ROLLING, start + ONE_TICK, now + ONE_TICK)
