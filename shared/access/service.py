"""Creating, checking, listing and revoking keys.

A key reads `sanwu_<key_id>_<secret>`. Only sha256(secret) is stored: the secret is 32 random
bytes, so a slow password hash would add latency without adding safety. Comparison is
constant-time.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.access.models import ApiKey, Role
from shared.errors import OutOfScope, Unauthenticated
from shared.registry.cache import UnitRegistry

_keys = ApiKey.__table__  # type: ignore[attr-defined]
PREFIX = "sanwu"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    role: Role
    scope_code: str | None  # None: everywhere (admin)
    # Units already found within the scope (a principal lives for one request): a batch names
    # the same villages again and again, and walking up the tree was most of its scope check.
    _covered: set[str] = field(default_factory=set, compare=False, repr=False)

    def covers(self, registry: UnitRegistry, unit_code: str) -> bool:
        if self.scope_code is None or unit_code in self._covered:
            return True
        if registry.is_within(unit_code, self.scope_code):
            self._covered.add(unit_code)
            return True
        return False

    def require_desk_for(self, registry: UnitRegistry, unit_codes: tuple[str, ...]) -> None:
        if self.role not in (Role.desk, Role.admin):
            raise OutOfScope(f"a {self.role} key may not post events")
        for code in unit_codes:
            if not self.covers(registry, code):
                raise OutOfScope(f"unit {code} is outside this key's scope")

    def require_reader_for(self, registry: UnitRegistry, unit_code: str) -> None:
        if self.role not in (Role.reader, Role.admin):
            raise OutOfScope(f"a {self.role} key may not read reports")
        if not self.covers(registry, unit_code):
            raise OutOfScope(f"unit {unit_code} is outside this key's scope")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(key: str) -> tuple[str, str] | None:
    parts = key.split("_")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


async def create(
    connection: AsyncConnection,
    *,
    role: Role,
    scope_code: str | None,
    label: str | None = None,
    expires_at: datetime | None = None,
) -> str:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32).replace("_", "-")
    await connection.execute(
        _keys.insert().values(
            key_id=key_id,
            secret_hash=_hash(secret),
            role=role.value,
            scope_code=scope_code,
            label=label,
            expires_at=expires_at,
        )
    )
    return f"{PREFIX}_{key_id}_{secret}"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key's row as authentication needs it."""

    secret_hash: str
    role: Role
    scope_code: str | None
    expires_at: datetime | None
    revoked_at: datetime | None


KEY_RECORD_SQL = """
    SELECT secret_hash, role, scope_code, expires_at, revoked_at
      FROM access.api_keys WHERE key_id = $1
"""


async def fetch_key(connection: asyncpg.Connection, key_id: str) -> KeyRecord | None:
    row = await connection.fetchrow(KEY_RECORD_SQL, key_id)
    if row is None:
        return None
    return KeyRecord(
        row["secret_hash"],
        Role(row["role"]),
        row["scope_code"],
        row["expires_at"],
        row["revoked_at"],
    )


def parse_authorization(authorization: str | None) -> tuple[str, str]:
    """(key id, secret) of an `Authorization: Bearer sanwu_<key_id>_<secret>` header."""
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthenticated("send 'Authorization: Bearer <key>'")
    parsed = _split(credentials.strip())
    if parsed is None:
        raise Unauthenticated("unknown key")
    return parsed


def principal_of(key_id: str, secret: str, record: KeyRecord | None) -> Principal:
    """The key's principal if the secret matches and the key is live; Unauthenticated if not."""
    if record is None or not hmac.compare_digest(record.secret_hash, _hash(secret)):
        raise Unauthenticated("unknown key")
    if record.revoked_at is not None:
        raise Unauthenticated("this key was revoked")
    if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
        raise Unauthenticated("this key has expired")
    return Principal(key_id=key_id, role=record.role, scope_code=record.scope_code)


async def list_keys(connection: AsyncConnection) -> list[dict[str, object]]:
    rows = await connection.execute(
        sa.select(
            _keys.c.key_id,
            _keys.c.role,
            _keys.c.scope_code,
            _keys.c.label,
            _keys.c.created_at,
            _keys.c.expires_at,
            _keys.c.revoked_at,
        ).order_by(_keys.c.created_at)
    )
    return [dict(r._mapping) for r in rows]


async def revoke(connection: AsyncConnection, key_id: str) -> bool:
    result = await connection.execute(
        _keys.update()
        .where(_keys.c.key_id == key_id, _keys.c.revoked_at.is_(None))
        .values(revoked_at=sa.func.now())
    )
    return bool(result.rowcount)
