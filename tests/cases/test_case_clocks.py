"""A case's clocks read from its steps, on the 2026 National Day week as the State Council
announced it (10-01 to 10-07 off, Sunday 09-20 and Saturday 10-10 worked)."""

from datetime import date, datetime, time

from services.cases.cases.clocks import ClockName, ClockState, StepFact, clocks_of, latest
from shared.calendar.rules import WorkingCalendar
from shared.campaign import SHANGHAI, CaseLimits
from shared.case_steps import Action

CALENDAR_2026 = WorkingCalendar(
    years=frozenset({2026}),
    exceptions={
        **{date(2026, 10, day): False for day in range(1, 8)},
        date(2026, 9, 20): True,
        date(2026, 10, 10): True,
    },
)
LIMITS = CaseLimits()


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime.combine(date(2026, month, day), time(hour), tzinfo=SHANGHAI)


def clocks(*steps: StepFact, today: date = date(2026, 9, 1)) -> dict[ClockName, object]:
    found = clocks_of(steps, calendar=CALENDAR_2026, limits=LIMITS, today=today)
    return {name: latest(found, name) for name in ClockName}


def test_received_on_09_16_the_route_clock_is_due_10_08_rolled_over_the_holiday() -> None:
    found = clocks(StepFact(Action.registered, at(9, 16)), today=date(2026, 9, 16))

    route = found[ClockName.route]
    assert route is not None
    assert route.due == date(2026, 10, 8)  # 10-01 is a day off: the next working day
    assert route.state is ClockState.running


def test_received_on_09_25_the_route_clock_is_due_10_10_a_make_up_working_day() -> None:
    found = clocks(StepFact(Action.registered, at(9, 25)), today=date(2026, 9, 25))

    route = found[ClockName.route]
    assert route is not None and route.due == date(2026, 10, 10)


def test_a_route_after_the_last_day_is_late_and_one_on_it_is_met() -> None:
    received = StepFact(Action.registered, at(9, 16))
    on_time = clocks(received, StepFact(Action.routed, at(10, 8, 17)))
    late = clocks(received, StepFact(Action.routed, at(10, 9, 9)))

    assert on_time[ClockName.route].state is ClockState.met  # type: ignore[union-attr]
    assert late[ClockName.route].state is ClockState.late  # type: ignore[union-attr]


def test_a_duty_not_done_after_its_last_day_is_overdue() -> None:
    found = clocks(StepFact(Action.registered, at(9, 1)), today=date(2026, 9, 17))

    assert found[ClockName.route].state is ClockState.overdue  # type: ignore[union-attr]


def test_the_objection_window_is_five_working_days_and_lapses_unused() -> None:
    steps = (StepFact(Action.registered, at(9, 28)), StepFact(Action.routed, at(9, 29)))
    open_ = clocks(*steps, today=date(2026, 10, 12))
    lapsed = clocks(*steps, today=date(2026, 10, 13))

    window = open_[ClockName.object]
    assert window is not None
    # 09-30, (the week off), 10-08, 10-09, 10-10 (worked), 10-12: the fifth working day
    assert window.due == date(2026, 10, 12)
    assert window.state is ClockState.running
    assert lapsed[ClockName.object].state is ClockState.lapsed  # type: ignore[union-attr]


def test_the_reply_clock_is_60_days_from_acceptance_and_an_extension_adds_30_after_it() -> None:
    steps = (
        StepFact(Action.registered, at(6, 1)),
        StepFact(Action.routed, at(6, 2)),
        StepFact(Action.accepted, at(6, 5), {"notified_at": at(6, 5).isoformat()}),
    )
    plain = clocks(*steps, today=date(2026, 6, 5))
    extended = clocks(
        *steps, StepFact(Action.extended, at(7, 20), {"days": 30}), today=date(2026, 6, 5)
    )

    assert plain[ClockName.reply].due == date(2026, 8, 4)  # type: ignore[union-attr]
    assert extended[ClockName.reply].due == date(2026, 9, 3)  # type: ignore[union-attr]


def test_acceptance_counts_when_the_petitioner_was_told_not_when_it_was_decided() -> None:
    steps = (StepFact(Action.registered, at(6, 1)), StepFact(Action.routed, at(6, 1)))
    told_late = clocks(
        *steps,
        StepFact(Action.accepted, at(6, 10), {"notified_at": at(6, 17).isoformat()}),
    )

    accept = told_late[ClockName.accept]
    assert accept is not None and accept.due == date(2026, 6, 16)
    assert accept.state is ClockState.late


def test_an_objection_cancels_the_bodys_acceptance_and_the_sender_must_route_again() -> None:
    found = clocks_of(
        (
            StepFact(Action.registered, at(6, 1)),
            StepFact(Action.routed, at(6, 2)),
            StepFact(Action.objected, at(6, 4)),
        ),
        calendar=CALENDAR_2026,
        limits=LIMITS,
        today=date(2026, 6, 4),
    )

    assert [c.name for c in found] == [ClockName.route, ClockName.object, ClockName.route]
    assert found[-1].started == date(2026, 6, 4) and found[-1].state is ClockState.running


def test_a_reply_opens_the_rating_and_review_request_windows() -> None:
    found = clocks(
        StepFact(Action.registered, at(6, 1)),
        StepFact(Action.routed, at(6, 1)),
        StepFact(Action.accepted, at(6, 2)),
        StepFact(Action.replied, at(7, 1)),
        today=date(2026, 7, 1),
    )

    assert found[ClockName.rating].due == date(2026, 7, 16)  # type: ignore[union-attr]
    assert found[ClockName.review_request].due == date(2026, 7, 31)  # type: ignore[union-attr]


def test_a_clock_into_a_year_not_covered_has_no_due_date_and_says_why() -> None:
    found = clocks(StepFact(Action.registered, at(12, 20)), today=date(2026, 12, 20))

    route = found[ClockName.route]
    assert route is not None and route.due is None
    assert route.due_reason is not None and "2027" in route.due_reason


def test_a_duty_two_days_from_due_is_due_soon_and_not_once_done() -> None:
    received = StepFact(Action.registered, at(6, 1))
    running = clocks(received, today=date(2026, 6, 14))[ClockName.route]
    done = clocks(received, StepFact(Action.routed, at(6, 14)), today=date(2026, 6, 14))

    assert running is not None and running.due_soon(date(2026, 6, 14))
    assert not done[ClockName.route].due_soon(date(2026, 6, 14))  # type: ignore[union-attr]


def test_a_clock_done_before_the_year_it_lacks_begins_was_met_and_one_after_is_undetermined() -> (
    None
):
    steps = (
        StepFact(Action.registered, at(11, 1)),
        StepFact(Action.routed, at(11, 2)),
        StepFact(Action.accepted, at(11, 3)),  # reply due in 2027, which the calendar lacks
    )
    replied = clocks(*steps, StepFact(Action.replied, at(12, 20)), today=date(2026, 12, 20))
    waiting = clocks(*steps, today=date(2026, 12, 20))

    assert replied[ClockName.reply].state is ClockState.met  # type: ignore[union-attr]
    assert waiting[ClockName.reply].state is ClockState.running  # type: ignore[union-attr]
    assert clocks(*steps, today=date(2027, 1, 5))[ClockName.reply].state is ClockState.undetermined  # type: ignore[union-attr]
