"""Creating, checking, listing and revoking keys, and the audit of who did it.

A key reads `sanwu_<key_id>_<secret>`. Only sha256(secret) is stored: the secret is 32 random
bytes, so a slow password hash would add latency without adding safety. Comparison is
constant-time.

Every creation and revocation is recorded in `access.key_audit` in the transaction that makes
it, with who made it: `key:<id>` for an admin key acting through an API; for the command line,
`user:<name>`, the name its `--actor` gives or else the operating-system account it runs as
(from the password database, never from LOGNAME or USER, which anyone may set). An expiry is
recorded once, when the key is first found expired (refused at use, or listed).
"""

import hashlib
import hmac
import os
import pwd
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.access.models import KeyAction, Role
from shared.access.repository import KeyRecord, KeyRepository
from shared.errors import OutOfScope, Unauthenticated
from shared.registry.cache import UnitRegistry

PREFIX = "sanwu"
# What `create` makes: 6 random bytes in hex, and 32 in URL-safe base64 without '_'. Anything
# else is refused without a lookup.
KEY_ID = re.compile(r"[0-9a-f]{12}")
SECRET = re.compile(r"[A-Za-z0-9-]{43}")


# A refusal for scope names no unit: not the one asked for, nor one the request led to (an
# event's, an application's county).
OUTSIDE = "a unit this request concerns is outside this key's scope"

# Bureaus read reports in their scope like readers.
READER_ROLES = (Role.reader, Role.bureau, Role.admin)


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    role: Role
    scope_code: str | None  # None: everywhere (admin)
    body: str | None = None  # a handler's body of its scope unit
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
            raise OutOfScope(f"a {self.role} key may not post events", reason="role")
        for code in unit_codes:
            if not self.covers(registry, code):
                raise OutOfScope(OUTSIDE)

    def require_reader_for(self, registry: UnitRegistry, unit_code: str) -> None:
        if self.role not in READER_ROLES:
            raise OutOfScope(f"a {self.role} key may not read reports", reason="role")
        if not self.covers(registry, unit_code):
            raise OutOfScope(OUTSIDE)


def _new_key() -> tuple[str, str]:
    """A new key's id and secret, in the forms KEY_ID and SECRET check."""
    return secrets.token_hex(6), secrets.token_urlsafe(32).replace("_", "-")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(key: str) -> tuple[str, str] | None:
    parts = key.split("_")
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    if not KEY_ID.fullmatch(parts[1]) or not SECRET.fullmatch(parts[2]):
        return None
    return parts[1], parts[2]


def claimed_key_id(authorization: str | None) -> str | None:
    """The key id a request's Authorization header names, if it is well-formed; never more of
    the header (the secret stays out of logs)."""
    _, _, credentials = (authorization or "").partition(" ")
    parts = credentials.strip().split("_")
    if len(parts) == 3 and parts[0] == PREFIX and KEY_ID.fullmatch(parts[1]):
        return parts[1]
    return None


def os_user() -> str:
    """The command line's actor when it names none: the operating-system account it runs as,
    by its user id."""
    uid = os.getuid()
    try:
        return f"user:{pwd.getpwuid(uid).pw_name}"
    except KeyError:  # no passwd entry (a bare container user)
        return f"user:uid {uid}"


ACTOR_NAME_LENGTH = 64


def named_actor(name: str) -> str:
    """The actor a person names on the command line (`--actor`): printable, on one line and
    without tabs (the audit is printed tab-separated); ValueError otherwise."""
    name = name.strip()
    if not 0 < len(name) <= ACTOR_NAME_LENGTH or not name.isprintable():
        raise ValueError(
            f"an actor is 1 to {ACTOR_NAME_LENGTH} printable characters on one line, without tabs"
        )
    return f"user:{name}"


def console_actor(address: str) -> str:
    """The actor of a console sign-in or sign-out: the client address it came from."""
    return f"console:{address or 'unknown'}"


def key_actor(key_id: str) -> str:
    """The actor of a change made through an API with an admin key."""
    return f"key:{key_id}"


async def create(
    connection: AsyncConnection,
    *,
    role: Role,
    scope_code: str | None,
    label: str | None = None,
    expires_at: datetime | None = None,
    actor: str | None = None,
    body: str | None = None,
) -> str:
    """A new key, recorded in the audit as made by `actor` (default: the operating-system
    user). Returns the key; only its hash is stored."""
    key_id, secret = _new_key()
    keys = await KeyRepository.from_connection(connection)
    await keys.add_key(
        key_id=key_id,
        secret_hash=_hash(secret),
        role=role,
        scope_code=scope_code,
        label=label,
        expires_at=expires_at,
        body=body,
    )
    await keys.add_audit(
        action=KeyAction.created,
        key_id=key_id,
        role=role.value,
        scope_code=scope_code,
        actor=actor or os_user(),
    )
    return f"{PREFIX}_{key_id}_{secret}"


def oidc_actor(subject: str) -> str:
    """The actor a key minted for a person an identity provider signed in is created by."""
    return f"oidc:{subject}"


async def mint_for_console(
    connection: asyncpg.Connection,
    *,
    role: Role,
    scope_code: str,
    body: str | None,
    expires_at: datetime,
    subject: str,
    label: str,
) -> str:
    """A key the console holds for a person an identity provider signed in, recorded in the
    audit as created by `oidc:<subject>`. Returns the key; only its hash is stored."""
    key_id, secret = _new_key()
    await KeyRepository(connection).mint_console_key(
        key_id=key_id,
        secret_hash=_hash(secret),
        role=role,
        scope_code=scope_code,
        body=body,
        label=label,
        expires_at=expires_at,
        actor=oidc_actor(subject),
    )
    return f"{PREFIX}_{key_id}_{secret}"


def parse_authorization(authorization: str | None) -> tuple[str, str]:
    """(key id, secret) of an `Authorization: Bearer sanwu_<key_id>_<secret>` header."""
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthenticated("send 'Authorization: Bearer <key>'", reason="missing")
    parsed = _split(credentials.strip())
    if parsed is None:
        raise Unauthenticated("unknown key", reason="malformed")
    return parsed


def principal_of(key_id: str, secret: str, *, record: KeyRecord | None) -> Principal:
    """The key's principal if the secret matches and the key is live; Unauthenticated if not."""
    if record is None or not hmac.compare_digest(record.secret_hash, _hash(secret)):
        raise Unauthenticated("unknown key", reason="unknown")
    if record.revoked_at is not None:
        raise Unauthenticated("this key was revoked", reason="revoked")
    if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
        raise Unauthenticated("this key has expired", reason="expired")
    return Principal(
        key_id=key_id, role=record.role, scope_code=record.scope_code, body=record.body
    )


async def list_keys(connection: AsyncConnection) -> list[dict[str, object]]:
    """Every key, oldest first (expiries found by this call recorded in the audit)."""
    keys = await KeyRepository.from_connection(connection)
    await keys.record_expiries()
    return await keys.keys()


async def revoke(connection: AsyncConnection, key_id: str, *, actor: str | None = None) -> bool:
    """Revoke a live key, recorded in the audit as done by `actor` (default: the
    operating-system user). False if there is no such key or it was already revoked."""
    keys = await KeyRepository.from_connection(connection)
    revoked = await keys.revoke(key_id)
    if revoked is None:
        return False
    role, scope_code = revoked
    await keys.add_audit(
        action=KeyAction.revoked,
        key_id=key_id,
        role=role,
        scope_code=scope_code,
        actor=actor or os_user(),
    )
    return True


async def audit(
    connection: AsyncConnection, *, key_id: str | None = None
) -> list[dict[str, object]]:
    """The audit, oldest first (expiries found by this call included)."""
    keys = await KeyRepository.from_connection(connection)
    await keys.record_expiries()
    return await keys.audit(key_id=key_id)
