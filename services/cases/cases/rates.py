"""The rates a county is judged by, from its cases and their clocks, without I/O.

Each rate is a numerator over a denominator, with the cases not yet due kept apart:

- timely acceptance (及时受理率): accepted (or declined, with notice) in time / (in time + late +
  overdue not accepted). A case not routed yet whose route clock is overdue cannot be accepted
  in time: it counts as overdue not accepted.
- on-time reply (按期办结率): replied in time / (in time + late + overdue not replied), over
  accepted cases.
- rating participation (参评率): rated / (rated + rating window passed unrated).
- satisfaction (满意率): (satisfied + basically satisfied) / rated.
- repeat (重复信访率): repeat registrations / all registrations.

A repeat counts only in the last: it follows its case and has no clocks of its own.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.cases.cases.clocks import Clock, ClockName, ClockState, latest
from shared.case_rates import RateName
from shared.case_steps import CaseState, Rating

SATISFIED = frozenset({Rating.satisfied, Rating.basically_satisfied})


@dataclass
class Tally:
    numerator: int = 0
    denominator: int = 0
    not_yet_due: int = 0

    @property
    def rate(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def judged(self, clock: Clock | None) -> None:
        """A duty's clock: met in time, late, overdue, or not due yet."""
        if clock is None or clock.state in (ClockState.running, ClockState.undetermined):
            self.not_yet_due += 1
            return
        self.denominator += 1
        self.numerator += clock.state is ClockState.met


@dataclass(frozen=True, slots=True)
class Judged:
    """A case as the rates read it."""

    state: CaseState
    rating: Rating | None
    clocks: Sequence[Clock]


def rates_of(cases: Iterable[Judged]) -> dict[RateName, Tally]:
    tallies = {name: Tally() for name in RateName}
    for case in cases:
        repeat = case.state in (CaseState.repeat, CaseState.refused)
        tallies[RateName.repeat].denominator += 1
        tallies[RateName.repeat].numerator += repeat
        if not repeat:
            _acceptance(tallies[RateName.timely_acceptance], case.clocks)
            reply = latest(case.clocks, ClockName.reply)
            if reply is not None:
                tallies[RateName.on_time_reply].judged(reply)
            _rating(tallies, case)
    return tallies


def _acceptance(tally: Tally, clocks: Sequence[Clock]) -> None:
    accept = latest(clocks, ClockName.accept)
    if accept is not None:
        tally.judged(accept)
        return
    route = latest(clocks, ClockName.route)
    if route is not None and route.state is ClockState.overdue:
        tally.denominator += 1
    else:
        tally.not_yet_due += 1


def _rating(tallies: dict[RateName, Tally], case: Judged) -> None:
    window = latest(case.clocks, ClockName.rating)
    if window is None:
        return
    participation, satisfaction = (
        tallies[RateName.rating_participation],
        tallies[RateName.satisfaction],
    )
    if case.rating is not None:
        participation.numerator += 1
        participation.denominator += 1
        satisfaction.denominator += 1
        satisfaction.numerator += case.rating in SATISFIED
    elif window.state is ClockState.lapsed:
        participation.denominator += 1
    else:
        participation.not_yet_due += 1
        satisfaction.not_yet_due += 1
