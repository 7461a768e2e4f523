"""Rendered summaries per (root, period), so that repeated reads of a province summary cost a
dictionary lookup rather than a query and a few dozen figures.

Every transaction that writes the read model sends a NOTIFY on commit; each instance LISTENs
and starts a new generation of its cache when one arrives, whichever instance made the change.
An entry is served only if it was rendered in the current generation and registry version, and
only while the listener is connected: if it drops, changes could go unseen, so the cache is
bypassed until it is back (and a reconnect starts a new generation)."""

import asyncio
import contextlib
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from pydantic import BaseModel

from shared.config import Settings
from shared.db import asyncpg_dsn

log = structlog.get_logger(__name__)

CHANNEL = "reporting_changes"
ENTRIES_KEPT = 2048
PING_SECONDS = 5.0
MAX_BACKOFF = 5.0

Stamp = tuple[int, int]  # (cache generation, registry version)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A JSON response body and its ETag (a hash of the body)."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, model: BaseModel) -> "Rendered":
        body = model.model_dump_json().encode()
        return cls(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


class SummaryCache:
    def __init__(self) -> None:
        self.generation = 0
        self.listening = False
        self._entries: OrderedDict[tuple[str, str], tuple[Stamp, Rendered]] = OrderedDict()

    def stamp(self, registry_version: int) -> Stamp | None:
        """Taken before reading the read model; None while changes cannot be seen."""
        return (self.generation, registry_version) if self.listening else None

    def get(self, key: tuple[str, str], stamp: Stamp | None) -> Rendered | None:
        entry = self._entries.get(key)
        if stamp is None or entry is None or entry[0] != stamp:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: tuple[str, str], stamp: Stamp | None, rendered: Rendered) -> None:
        if stamp is None:
            return
        self._entries[key] = (stamp, rendered)
        self._entries.move_to_end(key)
        if len(self._entries) > ENTRIES_KEPT:
            self._entries.popitem(last=False)

    def new_generation(self, *_: Any) -> None:
        self.generation += 1
        self._entries.clear()


class ChangeListener:
    """LISTENs for read-model changes on a connection of its own, until cancelled."""

    def __init__(self, settings: Settings, cache: SummaryCache) -> None:
        self.dsn = asyncpg_dsn(settings.database_url)
        self.cache = cache

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._listen()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("change_listener_down", error=repr(exc), retry_in=backoff)
            finally:
                self.cache.listening = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _listen(self) -> None:
        connection = await asyncpg.connect(self.dsn, timeout=3)
        try:
            await connection.add_listener(CHANNEL, self.cache.new_generation)
            self.cache.new_generation()  # anything may have changed while not listening
            self.cache.listening = True
            while not connection.is_closed():
                await asyncio.sleep(PING_SECONDS)
                await connection.fetchval("SELECT 1", timeout=3)
        finally:
            self.cache.listening = False
            with contextlib.suppress(Exception):
                await connection.close(timeout=1)
