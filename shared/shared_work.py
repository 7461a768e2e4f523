"""Work done once for everyone who asks for it at the same time."""

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SharedWork(Generic[K, V]):
    """At most one run of the work for a key at a time: a caller asking for a key whose work
    is running waits for that run instead of starting its own, and a caller that goes away
    does not cancel a run others may be waiting for."""

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        pending = self._running.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._run(key, work))
            pending.add_done_callback(_retrieved)
            self._running[key] = pending
        return await asyncio.shield(pending)

    async def _run(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        try:
            return await work()
        finally:
            del self._running[key]


def _retrieved(future: "asyncio.Future[Any]") -> None:
    # A failed run whose callers all went away is not worth a warning of its own.
    if not future.cancelled():
        future.exception()
