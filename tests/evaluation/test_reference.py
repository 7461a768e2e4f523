"""The reference model's own calendar (tests/support/reference.py), on the edges where a
shared mistake with the service would hide: a period's first and last instant, the rolling
window's start, 29 February."""

from datetime import date, datetime, timedelta

from tests.support.reference import SHANGHAI, NamedPeriod, in_trailing_12_months, named_periods

TICK = timedelta(microseconds=1)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def test_a_period_holds_from_its_first_to_its_last_instant_in_shanghai() -> None:
    period = NamedPeriod("2018", date(2018, 4, 30), date(2018, 12, 31))

    assert not period.holds(local(2018, 4, 30) - TICK)
    assert period.holds(local(2018, 4, 30))
    assert period.holds(local(2019, 1, 1) - TICK)
    assert not period.holds(local(2019, 1, 1))
    assert period.holds(datetime.fromisoformat("2018-12-31T15:59:59+00:00"))  # 23:59:59 there


def test_the_trailing_12_months_leave_out_their_start_and_keep_now() -> None:
    now = local(2020, 3, 15, 12)

    assert not in_trailing_12_months(local(2019, 3, 15, 12), now)
    assert in_trailing_12_months(local(2019, 3, 15, 12) + TICK, now)
    assert in_trailing_12_months(now, now)
    assert not in_trailing_12_months(now + TICK, now)


def test_a_year_before_29_february_is_28_february() -> None:
    now = local(2024, 2, 29, 8)

    assert not in_trailing_12_months(local(2023, 2, 28, 8), now)
    assert in_trailing_12_months(local(2023, 2, 28, 8) + TICK, now)


def test_the_campaign_file_gives_listed_periods_and_calendar_years_to_today() -> None:
    spec = {
        "periods": [{"id": "2018", "start": date(2018, 4, 30), "end": "2018-12-31"}],
        "calendar_years_from": 2019,
    }

    periods = named_periods(spec, today=date(2021, 1, 1))

    assert [(p.id, p.first_day, p.last_day) for p in periods] == [
        ("2018", date(2018, 4, 30), date(2018, 12, 31)),
        ("2019", date(2019, 1, 1), date(2019, 12, 31)),
        ("2020", date(2020, 1, 1), date(2020, 12, 31)),
        ("2021", date(2021, 1, 1), date(2021, 12, 31)),
    ]
