"""What identifies a person or a matter (`petitioner_ref`, `matter_ref`) is stored and published
only as a keyed hash: stable, so repeats are recognisable across intake and cases, and not
reversible without the secret (`SANWU_PETITIONER_HASH_SECRET`)."""

import hashlib
import hmac
from uuid import UUID

HASH_PREFIX = "hmac-sha256:"
# Keeps the keyed event ids apart from the reference hashes made with the same secret.
EVENT_ID_CONTEXT = b"sanwu-event-id\x00"


class KeyedHash:
    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def __call__(self, ref: str) -> str:
        return HASH_PREFIX + hmac.new(self._key, ref.encode(), hashlib.sha256).hexdigest()

    def event_id(self, seed: UUID) -> UUID:
        """The event id keyed from a seed a client derived from what it sends (an imported
        row's content, with its matter reference): stable for the same seed, so importing a
        file again gives the same ids, and not computable without the secret, so an id tells
        nothing of the row. A UUID of version 8 (its bits are the key's own)."""
        digest = hmac.new(self._key, EVENT_ID_CONTEXT + seed.bytes, hashlib.sha256).digest()
        value = int.from_bytes(digest[:16], "big")
        value = (value & ~(0xF << 76)) | (8 << 76)  # version 8
        value = (value & ~(0x3 << 62)) | (0x2 << 62)  # the RFC 9562 variant
        return UUID(int=value)
