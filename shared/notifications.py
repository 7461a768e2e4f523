"""In-process caches that stay exact across processes: every transaction that changes what a
cache holds sends a NOTIFY (a trigger or the writer itself), and each process LISTENs on one
connection of its own and starts a new generation of the caches concerned when one arrives.

A cache may serve an entry only while `listening` is true. It turns false the moment the
connection closes (asyncpg's termination callback, not the next ping), when a ping fails, and
whenever anything else goes wrong; caches are bypassed until the listener is back, and being
back starts a new generation of every cache (anything may have changed meanwhile). Whatever
stops it, the listener starts again, with a growing pause while it keeps failing. A connection
that breaks without closing (a network partition) is noticed by the ping, every PING_SECONDS.
"""

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any, Protocol

import asyncpg
import structlog

from shared.config import Settings
from shared.db import asyncpg_dsn
from shared.repository import ping
from shared.retry import keep_running

log = structlog.get_logger(__name__)

PING_SECONDS = 2.0
PING_TIMEOUT_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 3.0


class Invalidated(Protocol):
    """A cache kept exact by notifications."""

    listening: bool

    def new_generation(self, *_: Any) -> None: ...


class ListenerLost(Exception):
    """The listening connection ended or a cache could not start a new generation."""


def application_name() -> str:
    """How the listening connection shows in pg_stat_activity."""
    return f"sanwu listener {os.getpid()}"


class ChangeListener:
    """LISTENs on each channel for its cache, until cancelled."""

    def __init__(self, settings: Settings, caches: dict[str, Invalidated]) -> None:
        self.dsn = asyncpg_dsn(settings.database_url)
        self.caches = caches
        self.backend_pid: int | None = None  # the listening connection's server process

    async def run(self) -> None:
        await keep_running(self._listen, event="change_listener_down")

    async def _listen(self) -> None:
        """Listen until the connection is lost (ListenerLost) or anything else fails."""
        lost = asyncio.Event()

        def on_lost(*_: object) -> None:
            self._set_listening(False)
            lost.set()

        connection = await asyncpg.connect(
            self.dsn,
            timeout=CONNECT_TIMEOUT_SECONDS,
            server_settings={"application_name": application_name()},
        )
        try:
            connection.add_termination_listener(on_lost)
            for channel, cache in self.caches.items():
                await connection.add_listener(channel, self._on_notification(cache, on_lost))
            for cache in self.caches.values():
                cache.new_generation()
            self._set_listening(True)
            self.backend_pid = connection.get_server_pid()
            log.info("change_listener_up", backend_pid=self.backend_pid)
            await self._watch(connection, lost)
        finally:
            self._set_listening(False)
            self.backend_pid = None
            with contextlib.suppress(Exception):
                await connection.close(timeout=1)

    @staticmethod
    async def _watch(connection: asyncpg.Connection, lost: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PING_SECONDS):
                    await lost.wait()
            if lost.is_set() or connection.is_closed():
                raise ListenerLost("the listening connection closed")
            await ping(connection, timeout=PING_TIMEOUT_SECONDS)

    @staticmethod
    def _on_notification(cache: Invalidated, on_lost: Callable[[], None]) -> Callable[..., None]:
        def notified(*args: Any) -> None:
            try:
                cache.new_generation(*args)
            except Exception:
                # The cache may hold what just changed: stop serving it and start over.
                log.exception("change_listener_cache_failed", cache=type(cache).__name__)
                on_lost()

        return notified

    def _set_listening(self, listening: bool) -> None:
        for cache in self.caches.values():
            cache.listening = listening
