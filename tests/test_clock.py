"""One clock for every service: `shared.campaign.system_now`, moved by SANWU_CLOCK_OFFSET_SECONDS
in test and local runs (`make test-clock` runs the suite on New Year's Eve and on leap day),
refused in production; evaluation's clock moves further from it in tests."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.evaluation.config import EvaluationSettings
from shared.campaign import system_now
from shared.config import ClockSettings, Settings, clock_offset

DAY = 86_400


@pytest.fixture
def offset_of_a_day(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's clock a day ahead, read afresh (and afterwards the run's own again)."""
    monkeypatch.setenv("SANWU_ENVIRONMENT", "test")
    monkeypatch.setenv("SANWU_CLOCK_OFFSET_SECONDS", str(clock_offset().total_seconds() + DAY))
    clock_offset.cache_clear()
    yield
    monkeypatch.undo()
    clock_offset.cache_clear()


@pytest.mark.usefixtures("offset_of_a_day")
def test_every_service_clock_runs_by_the_offset() -> None:
    run_offset = clock_offset() - timedelta(seconds=DAY)  # what the run itself set, if anything
    before = datetime.now(UTC) + run_offset

    now = system_now()
    evaluation = EvaluationSettings().clock()
    evaluation.advance(timedelta(hours=2))

    assert before + timedelta(days=1) <= now <= datetime.now(UTC) + run_offset + timedelta(days=1)
    assert now + timedelta(hours=2) <= evaluation.now() <= system_now() + timedelta(hours=2)


@pytest.mark.parametrize("kind", [ClockSettings, Settings, EvaluationSettings])
def test_production_refuses_an_offset(kind: type[ClockSettings | Settings]) -> None:
    with pytest.raises(ValidationError, match="clock offsets are for tests and local runs"):
        kind(environment="production", clock_offset_seconds=60, petitioner_hash_secret="s")


@pytest.mark.parametrize("environment", ["local", "test"])
def test_test_and_local_runs_may_move_it(environment: str) -> None:
    assert ClockSettings(environment=environment, clock_offset_seconds=-60).clock_offset_seconds
