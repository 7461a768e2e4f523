"""The backoff every background loop shares, and how a service's lifespan starts and stops
its background tasks."""

import asyncio
import itertools

import pytest
import structlog

from shared import retry
from shared.lifespan import BackgroundTasks


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "FIRST_PAUSE", 0.01)
    monkeypatch.setattr(retry, "JITTER", 0.0)


async def test_keep_running_restarts_after_failures_with_growing_pauses() -> None:
    starts: list[float] = []
    fourth = asyncio.Event()

    async def work() -> None:
        starts.append(asyncio.get_running_loop().time())
        if len(starts) < 4:
            raise ConnectionError("away")
        fourth.set()
        await asyncio.Event().wait()

    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(retry.keep_running(work, event="work_failed", part="test"))
        await asyncio.wait_for(fourth.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    pauses = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert pauses[0] >= 0.01 and pauses[2] >= 0.04
    failed = [entry for entry in logs if entry["event"] == "work_failed"]
    assert [entry["attempt"] for entry in failed] == [1, 2, 3]
    assert all(entry["part"] == "test" and "ConnectionError" in entry["error"] for entry in failed)


async def test_keep_running_starts_again_at_once_after_a_long_run() -> None:
    runs = 0

    async def work() -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.05)
        raise ConnectionError("lost after a stable run")

    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(retry.keep_running(work, event="work_failed", stable_after=0.01))
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert runs >= 5
    assert not [entry for entry in logs if entry["event"] == "work_failed"]


async def test_retry_until_done_raises_what_it_may_not_retry() -> None:
    calls = 0

    async def operation() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("transient")
        raise ValueError("wrong")

    with pytest.raises(ValueError, match="wrong"):
        await retry.retry_until_done(
            operation, event="op_failed", retry_if=lambda e: isinstance(e, ConnectionError)
        )
    assert calls == 2


async def until_cancelled(stopped: list[str], name: str) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        stopped.append(name)


async def test_background_tasks_stop_in_reverse_order() -> None:
    stopped: list[str] = []

    async def stop_attached() -> None:
        stopped.append("attached")

    tasks = BackgroundTasks()
    tasks.start("first", until_cancelled(stopped, "first"))
    tasks.attach("attached", stop_attached)
    tasks.start("last", until_cancelled(stopped, "last"))
    await asyncio.sleep(0)

    await tasks.stop()

    assert stopped == ["last", "attached", "first"]
    assert tasks.names == []


async def test_a_background_task_that_ends_is_logged_and_not_restarted() -> None:
    runs = 0

    async def fails() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("broken")

    tasks = BackgroundTasks()
    with structlog.testing.capture_logs() as logs:
        task = tasks.start("fragile", fails())
        with pytest.raises(RuntimeError):
            await task
        await asyncio.sleep(0.05)
    await tasks.stop()

    assert runs == 1
    [ended] = [entry for entry in logs if entry["event"] == "background_task_ended"]
    assert ended["task"] == "fragile" and "broken" in ended["error"]


async def test_one_background_task_stops_alone_and_starts_again() -> None:
    stopped: list[str] = []

    tasks = BackgroundTasks()
    tasks.start("upkeep", until_cancelled(stopped, "upkeep"))
    tasks.start("relay", until_cancelled(stopped, "relay"))
    await asyncio.sleep(0)

    await tasks.stop_one("upkeep")
    assert stopped == ["upkeep"] and tasks.names == ["relay"]
    tasks.start("upkeep", until_cancelled(stopped, "upkeep again"))
    await asyncio.sleep(0)
    await tasks.stop()
    assert stopped == ["upkeep", "upkeep again", "relay"]
