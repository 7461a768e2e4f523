"""Counting limits on a calendar built by hand: the 2026 National Day week as the State Council
announced it (10-01 to 10-07 off, Sunday 09-20 and Saturday 10-10 worked)."""

from datetime import UTC, date, datetime, timedelta

import pytest

from shared.calendar.rules import (
    Limit,
    WorkingCalendar,
    YearNotCovered,
    last_day,
    notice_day,
    within,
)
from shared.campaign import DISPUTE_WINDOW

NATIONAL_DAY_2026 = WorkingCalendar(
    years=frozenset({2026}),
    exceptions={
        **{date(2026, 10, day): False for day in range(1, 8)},
        date(2026, 9, 20): True,
        date(2026, 10, 10): True,
    },
)


def test_five_working_days_from_the_eve_of_national_day_end_on_10_13() -> None:
    deadline = last_day(NATIONAL_DAY_2026, date(2026, 9, 30), DISPUTE_WINDOW)

    assert deadline.last_day == date(2026, 10, 13)
    assert deadline.reason is None


def test_a_make_up_sunday_counts_as_a_working_day() -> None:
    deadline = last_day(NATIONAL_DAY_2026, date(2026, 9, 18), DISPUTE_WINDOW)

    assert deadline.last_day == date(2026, 9, 24)


def test_a_limit_reaching_into_a_year_not_covered_has_no_last_day_and_says_which_year() -> None:
    deadline = last_day(NATIONAL_DAY_2026, date(2026, 12, 28), DISPUTE_WINDOW)

    assert deadline.last_day is None
    assert deadline.missing_year == 2027
    assert deadline.reason is not None and "2027" in deadline.reason


def test_a_limit_within_the_covered_year_is_computed_even_at_its_end() -> None:
    deadline = last_day(NATIONAL_DAY_2026, date(2026, 12, 23), DISPUTE_WINDOW)

    assert deadline.last_day == date(2026, 12, 30)


def test_calendar_days_end_on_day_d_plus_n_when_it_is_worked() -> None:
    deadline = last_day(NATIONAL_DAY_2026, date(2026, 9, 1), Limit(days=15, working_days=False))

    assert deadline.last_day == date(2026, 9, 16)


def test_calendar_days_ending_on_a_holiday_move_to_the_next_working_day() -> None:
    # 09-16 + 15 days = 10-01, a day off until 10-07; 10-08 is a Thursday.
    deadline = last_day(NATIONAL_DAY_2026, date(2026, 9, 16), Limit(days=15, working_days=False))

    assert deadline.last_day == date(2026, 10, 8)


def test_calendar_days_ending_on_a_make_up_saturday_stay_there() -> None:
    deadline = last_day(NATIONAL_DAY_2026, date(2026, 9, 25), Limit(days=15, working_days=False))

    assert deadline.last_day == date(2026, 10, 10)


def test_calendar_days_ending_on_an_ordinary_sunday_move_to_monday() -> None:
    deadline = last_day(NATIONAL_DAY_2026, date(2026, 11, 7), Limit(days=1, working_days=False))

    assert deadline.last_day == date(2026, 11, 9)


def test_the_notice_is_the_day_in_shanghai_of_the_earlier_of_acceptance_and_reporting() -> None:
    accepted = datetime(2026, 9, 30, 17, 0, tzinfo=UTC)  # 10-01 01:00 in Shanghai
    reported = accepted - timedelta(hours=2)  # 09-30 23:00 in Shanghai

    assert notice_day(accepted, None) == date(2026, 10, 1)
    assert notice_day(accepted, reported) == date(2026, 9, 30)
    assert notice_day(accepted, accepted + timedelta(days=3)) == date(2026, 10, 1)


def test_a_day_is_within_a_limit_up_to_its_last_day() -> None:
    notice = date(2026, 9, 30)

    assert within(NATIONAL_DAY_2026, notice, DISPUTE_WINDOW, date(2026, 10, 13))
    assert not within(NATIONAL_DAY_2026, notice, DISPUTE_WINDOW, date(2026, 10, 14))


def test_a_day_before_a_missing_year_is_within_a_limit_that_reaches_into_it() -> None:
    notice = date(2026, 12, 28)

    assert within(NATIONAL_DAY_2026, notice, DISPUTE_WINDOW, date(2026, 12, 31))
    with pytest.raises(YearNotCovered):
        within(NATIONAL_DAY_2026, notice, DISPUTE_WINDOW, date(2027, 1, 4))
