"""The background work of a service's lifespan (relays, listeners, consumers, upkeep), started
by name and stopped in reverse order. A task that ends on its own is logged as an error and
not restarted: each long-running loop restarts itself after failures (`shared.retry`)."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)

Stop = Callable[[], Awaitable[None]]


class BackgroundTasks:
    def __init__(self) -> None:
        self._stops: list[tuple[str, Stop]] = []

    def start(self, name: str, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(_log_ended)

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        self._stops.append((name, stop))
        return task

    def attach(self, name: str, stop: Stop) -> None:
        """Something started elsewhere (a consumer that can be paused) to stop with the rest."""
        self._stops.append((name, stop))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._stops]

    async def stop_one(self, name: str) -> None:
        """Stop the task of that name alone (as if it had gone down); `start` starts it again."""
        index = next(i for i, (each, _) in enumerate(self._stops) if each == name)
        _, stop = self._stops.pop(index)
        await stop()

    async def stop(self) -> None:
        """Stop everything, the last started first; a failure to stop one does not keep the
        others running."""
        while self._stops:
            name, stop = self._stops.pop()
            try:
                await stop()
            except Exception:
                log.exception("background_task_stop_failed", task=name)


def _log_ended(task: "asyncio.Task[None]") -> None:
    if task.cancelled():
        return
    error = task.exception()
    log.error(
        "background_task_ended",
        task=task.get_name(),
        error=repr(error) if error else None,
        exc_info=error,
    )
