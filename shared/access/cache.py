"""Authenticating a request without a database round trip.

Key rows are kept in process once read, and unknown key ids for a few seconds. Any change to
the key table (a new key, a revocation, a change of expiry or scope, a deletion) fires a NOTIFY
on `access_keys` from a trigger; every process forgets what it kept when it arrives (see
shared.notifications), so every instance refuses a revoked key, and accepts a new one, from the
moment the notification reaches it, about a millisecond after the change commits. While a
process is not listening, it keeps nothing and reads every key from the database. Expiry is
checked on every request against the kept row, so it needs no notification.

A key id not kept costs a lookup; past its limit of failed authentications, a client address
gets 429 instead of further lookups until its window ends.
"""

import time

import structlog

from shared.access.metrics import key_lookups
from shared.access.repository import KeyRecord, KeyRepository
from shared.access.service import Principal, parse_authorization, principal_of
from shared.db import Database
from shared.errors import DependencyUnavailable, Unauthenticated
from shared.ratelimit import FailedAuthentications

log = structlog.get_logger(__name__)

CHANNEL = "access_keys"
KEYS_KEPT = 10_000
MISSES_KEPT = 10_000
MISS_SECONDS = 5.0


class KeyCache:
    def __init__(self, db: Database, *, failures: FailedAuthentications | None = None) -> None:
        self.db = db
        self.failures = failures or FailedAuthentications("")
        self.listening = False
        self.generation = 0
        self._records: dict[str, KeyRecord] = {}
        self._misses: dict[str, float] = {}  # unknown key id: when it was found unknown
        self._expiries_recorded: set[str] = set()

    async def authenticate(self, authorization: str | None, *, address: str = "") -> Principal:
        """The principal of a request's key. Unauthenticated (401) for a missing, malformed,
        unknown, revoked or expired key; RateLimited (429) for an address past its failures."""
        try:
            key_id, secret = parse_authorization(authorization)
            record = self._kept(key_id)
            if record is None and not self._known_unknown(key_id):
                self.failures.check(address)
                record = await self._lookup(key_id)
            return principal_of(key_id, secret, record=record)
        except Unauthenticated as refusal:
            self.failures.count(address)
            if refusal.reason == "expired":
                await self._record_expiry(key_id)
            raise

    def new_generation(self, *_: object) -> None:
        self.generation += 1
        self._records.clear()
        self._misses.clear()

    def _kept(self, key_id: str) -> KeyRecord | None:
        return self._records.get(key_id) if self.listening else None

    def _known_unknown(self, key_id: str) -> bool:
        if not self.listening or (found_at := self._misses.get(key_id)) is None:
            return False
        if time.monotonic() - found_at < MISS_SECONDS:
            return True
        del self._misses[key_id]
        return False

    async def _lookup(self, key_id: str) -> KeyRecord | None:
        generation = self.generation
        async with self.db.connection() as connection:
            record = await KeyRepository(connection).key_record(key_id)
        key_lookups.labels(found=str(record is not None).lower()).inc()
        # Kept only if no change was announced while it was read: the row might predate it.
        if self.listening and generation == self.generation:
            if record is None:
                if len(self._misses) >= MISSES_KEPT:
                    self._misses.clear()
                self._misses[key_id] = time.monotonic()
            else:
                if len(self._records) >= KEYS_KEPT:
                    self._records.clear()
                self._records[key_id] = record
        return record

    async def _record_expiry(self, key_id: str) -> None:
        """The audit's expiry row, written by the first refusal in this process (the database
        keeps one per key, whichever process finds it first). A failure to write it leaves the
        refusal a 401: the next refusal or `sanwu keys list` records it."""
        if key_id in self._expiries_recorded:
            return
        try:
            async with self.db.connection(commits=True) as connection:
                await KeyRepository(connection).record_expiry(key_id)
        except DependencyUnavailable as exc:
            log.warning("key_expiry_not_recorded", key_id=key_id, error=exc.detail)
            return
        if len(self._expiries_recorded) >= KEYS_KEPT:
            self._expiries_recorded.clear()
        self._expiries_recorded.add(key_id)
