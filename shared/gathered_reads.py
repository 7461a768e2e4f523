"""Reads of single keys asked at the same moment, done together: the keys asked while the
previous reads run are read by the next one, in one statement. No caller waits for a timer: a
read starts as soon as one of the `reads` slots is free, so a key alone is read at once, and
fifty dashboards opening fifty units share a few round trips instead of queueing for fifty.

A read starts only after its keys were asked, so what it returns is at least as new as the
moment each caller asked."""

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Reads the keys (distinct, at most `max_keys`); a value for each.
Read = Callable[[list[K]], Awaitable[Mapping[K, V]]]


class GatheredReads(Generic[K, V]):
    def __init__(self, read: Read[K, V], *, reads: int, max_keys: int) -> None:
        """At most `reads` reads run at once, each of at most `max_keys` keys."""
        self._read = read
        self._reads = reads
        self._max_keys = max_keys
        self._waiting: dict[K, asyncio.Future[V]] = {}
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, key: K) -> V:
        future = self._waiting.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            future.add_done_callback(_retrieved)
            self._waiting[key] = future
            if self._running < self._reads:
                self._running += 1
                task = asyncio.create_task(self._drain())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        # Shielded: a caller that goes away does not cancel what others asking the key wait for.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                await self._read_group(self._next_group())
        finally:
            self._running -= 1

    def _next_group(self) -> dict[K, "asyncio.Future[V]"]:
        group: dict[K, asyncio.Future[V]] = {}
        for key in list(self._waiting)[: self._max_keys]:
            group[key] = self._waiting.pop(key)
        return group

    async def _read_group(self, group: dict[K, "asyncio.Future[V]"]) -> None:
        try:
            values = await self._read(list(group))
        except Exception as exc:
            for future in group.values():
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled while shutting down
            for future in group.values():
                future.cancel()
            raise
        for key, future in group.items():
            if not future.done():
                future.set_result(values[key])


def _retrieved(future: "asyncio.Future[Any]") -> None:
    # A failed read whose callers all went away is not worth a warning of its own.
    if not future.cancelled():
        future.exception()
