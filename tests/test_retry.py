"""The bounds of the one retry policy: `retry_until_done` gives up after `attempts` tries or
`within` seconds (its pauses never going past them) with the last failure, and waits what a
failure asks for when `pause_of` finds it."""

import asyncio

import pytest
import structlog

from shared import retry


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "FIRST_PAUSE", 0.01)
    monkeypatch.setattr(retry, "JITTER", 0.0)


async def test_attempts_bound_the_tries_and_the_last_failure_is_raised() -> None:
    calls = 0

    async def operation() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError(f"away {calls}")

    with structlog.testing.capture_logs() as logs, pytest.raises(ConnectionError, match="away 3"):
        await retry.retry_until_done(operation, event="op_failed", attempts=3)
    assert calls == 3
    assert [entry["attempt"] for entry in logs if entry["event"] == "op_failed"] == [1, 2]


async def test_within_bounds_the_wait_and_the_last_pause_ends_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(retry, "FIRST_PAUSE", 0.2)  # then 0.4: the third try at 0.6 s
    loop = asyncio.get_running_loop()
    tries: list[float] = []

    async def operation() -> None:
        tries.append(loop.time())
        raise ConnectionError("away")

    started = loop.time()
    with pytest.raises(ConnectionError):
        await retry.retry_until_done(operation, event="op_failed", within=0.3)
    # The second pause is cut to what is left: the last try at the deadline, not at 0.6 s.
    assert len(tries) == 3
    assert 0.29 <= tries[-1] - started < 0.5, [t - started for t in tries]


async def test_a_failure_may_say_how_long_to_wait() -> None:
    loop = asyncio.get_running_loop()
    tries: list[float] = []

    class Busy(Exception):
        pass

    async def operation() -> str:
        tries.append(loop.time())
        if len(tries) < 2:
            raise Busy()
        return "done"

    def pause_of(error: BaseException) -> float | None:
        return 0.3 if isinstance(error, Busy) else None

    assert await retry.retry_until_done(operation, event="op_failed", pause_of=pause_of) == "done"
    assert tries[1] - tries[0] >= 0.29


async def test_what_the_bound_does_not_retry_is_raised_at_once() -> None:
    calls = 0

    async def operation() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("wrong")

    with pytest.raises(ValueError):
        await retry.retry_until_done(
            operation,
            event="op_failed",
            retry_if=lambda e: isinstance(e, ConnectionError),
            attempts=5,
        )
    assert calls == 1
