"""Opaque cursors: a kind and a position, base64url-encoded so clients do not build them."""

import base64
import binascii

from shared.errors import InvalidInput

# Positions are sequence numbers (below 2**63) and unit codes (12 digits).
MAX_POSITION_LENGTH = 18


def encode(kind: str, position: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def decode(kind: str, cursor: str, *, field: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    found, _, position = text.partition(":")
    if found != kind or not _possible(position):
        raise InvalidInput(
            f"{field} is not a cursor this endpoint returned",
            errors=[{"field": field, "message": "not a valid cursor", "type": "cursor"}],
        )
    return position


def _possible(position: str) -> bool:
    # ASCII only: "²" passes str.isdigit() but not int(); and short enough for a bigint.
    return 0 < len(position) <= MAX_POSITION_LENGTH and position.isascii()


def decode_seq(kind: str, cursor: str, *, field: str) -> int:
    """A feed position (a sequence number) from a cursor of `kind`."""
    position = decode(kind, cursor, field=field)
    if not position.isdigit():
        raise InvalidInput(
            f"{field} is not a cursor this endpoint returned",
            errors=[{"field": field, "message": "not a valid cursor", "type": "cursor"}],
        )
    return int(position)
