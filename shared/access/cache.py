"""Authenticating a request without a database round trip.

Key rows are kept in process once read. Changing a key (revoking it, changing its expiry or
scope, deleting it) fires a NOTIFY on `access_keys` from a trigger; every process drops its
kept rows when it arrives (see shared.notifications), so every instance refuses a revoked key
from the moment the notification reaches it, about a millisecond after the revocation commits.
Expiry is checked on every request against the kept row, so it needs no notification. Unknown
keys are never kept: each costs a lookup.
"""

from shared.access.service import (
    KeyRecord,
    Principal,
    fetch_key,
    parse_authorization,
    principal_of,
)
from shared.db import Database

CHANNEL = "access_keys"
KEYS_KEPT = 10_000


class KeyCache:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.listening = False
        self.generation = 0
        self._records: dict[str, KeyRecord] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        key_id, secret = parse_authorization(authorization)
        return principal_of(key_id, secret, await self._record(key_id))

    async def _record(self, key_id: str) -> KeyRecord | None:
        if self.listening and (record := self._records.get(key_id)) is not None:
            return record
        generation = self.generation
        async with self.db.connection() as connection:
            record = await fetch_key(connection, key_id)
        # Kept only if no change was announced while it was read: the row might predate it.
        if record is not None and self.listening and generation == self.generation:
            if len(self._records) >= KEYS_KEPT:
                self._records.clear()
            self._records[key_id] = record
        return record

    def new_generation(self, *_: object) -> None:
        self.generation += 1
        self._records.clear()
