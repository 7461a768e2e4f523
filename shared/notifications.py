"""In-process caches that stay exact across processes: every transaction that changes what a
cache holds sends a NOTIFY (a trigger or the writer itself), and each process LISTENs on one
connection of its own and starts a new generation of the caches concerned when one arrives.

A cache may serve an entry only while `listening` is true: if the connection drops, changes
could go unseen, so caches are bypassed until it is back, and a reconnect starts a new
generation of every cache (anything may have changed meanwhile)."""

import asyncio
import contextlib
from typing import Any, Protocol

import asyncpg
import structlog

from shared.config import Settings
from shared.db import asyncpg_dsn

log = structlog.get_logger(__name__)

PING_SECONDS = 5.0
MAX_BACKOFF = 5.0


class Invalidated(Protocol):
    """A cache kept exact by notifications."""

    listening: bool

    def new_generation(self, *_: Any) -> None: ...


class ChangeListener:
    """LISTENs on each channel for its cache, until cancelled."""

    def __init__(self, settings: Settings, caches: dict[str, Invalidated]) -> None:
        self.dsn = asyncpg_dsn(settings.database_url)
        self.caches = caches

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._listen()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("change_listener_down", error=repr(exc), retry_in=backoff)
            finally:
                self._set_listening(False)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _listen(self) -> None:
        connection = await asyncpg.connect(self.dsn, timeout=3)
        try:
            for channel, cache in self.caches.items():
                await connection.add_listener(channel, cache.new_generation)
            for cache in self.caches.values():
                cache.new_generation()
            self._set_listening(True)
            while not connection.is_closed():
                await asyncio.sleep(PING_SECONDS)
                await connection.fetchval("SELECT 1", timeout=3)
        finally:
            self._set_listening(False)
            with contextlib.suppress(Exception):
                await connection.close(timeout=1)

    def _set_listening(self, listening: bool) -> None:
        for cache in self.caches.values():
            cache.listening = listening
