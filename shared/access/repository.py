"""The SQL of API keys and their audit (`access.api_keys`, `access.key_audit`).

A request's key look-up is one asyncpg statement on a pooled connection
(`KeyRepository(connection)`); the command line's changes run in its transaction
(`await KeyRepository.from_connection(connection)`), built on the table models.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared.access.models import ApiKey, KeyAction, KeyAuditEntry, Role
from shared.repository import Repository, rows_affected

_keys = ApiKey.__table__  # type: ignore[attr-defined]
_audit = KeyAuditEntry.__table__  # type: ignore[attr-defined]

KEY_RECORD_SQL = """
    SELECT secret_hash, role, scope_code, expires_at, revoked_at, body
      FROM access.api_keys WHERE key_id = $1
"""
# An expiry, once per key (by `system`): the partial unique index on key_id for expiries makes
# a second finding a no-op. A key revoked before it expired has no expiry to record.
_FOUND_EXPIRED = """
    INSERT INTO access.key_audit (at, action, key_id, role, scope_code, actor)
    SELECT greatest(expires_at, created_at), 'expired', key_id, role, scope_code, 'system'
      FROM access.api_keys
     WHERE expires_at <= now() AND (revoked_at IS NULL OR revoked_at > expires_at)
"""
_ONCE = " ON CONFLICT (key_id) WHERE action = 'expired' DO NOTHING"
RECORD_EXPIRY_SQL = _FOUND_EXPIRED + " AND key_id = $1" + _ONCE
RECORD_EXPIRIES_SQL = _FOUND_EXPIRED + _ONCE
# A use of a key (a console sign-in or sign-out), with the key's role and scope; nothing for a
# key id no key has.
RECORD_USE_SQL = """
    INSERT INTO access.key_audit (action, key_id, role, scope_code, actor)
    SELECT $2, key_id, role, scope_code, $3 FROM access.api_keys WHERE key_id = $1
"""

# The console's keys for people an identity provider signed in (the functions of migration
# 0010_shared check the role, scope, end and actor; the console's role may call only these).
MINT_CONSOLE_KEY_SQL = "SELECT access.mint_console_key($1, $2, $3, $4, $5, $6, $7, $8)"
REVOKE_CONSOLE_KEY_SQL = "SELECT access.revoke_console_key($1, $2)"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key's row as authentication needs it."""

    secret_hash: str
    role: Role
    scope_code: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    body: str | None = None


class KeyRepository(Repository):
    async def key_record(self, key_id: str) -> KeyRecord | None:
        row = await self.connection.fetchrow(KEY_RECORD_SQL, key_id)
        if row is None:
            return None
        return KeyRecord(
            row["secret_hash"],
            Role(row["role"]),
            row["scope_code"],
            row["expires_at"],
            row["revoked_at"],
            row["body"],
        )

    async def record_expiry(self, key_id: str) -> None:
        """Record that a key was found expired, unless already recorded."""
        await self.connection.execute(RECORD_EXPIRY_SQL, key_id)

    async def record_use(self, key_id: str, *, action: KeyAction, actor: str) -> bool:
        """Record a use of the key; False when no key has that id (nothing recorded)."""
        status = await self.connection.execute(RECORD_USE_SQL, key_id, action.value, actor)
        return rows_affected(status) == 1

    async def mint_console_key(
        self,
        *,
        key_id: str,
        secret_hash: str,
        role: Role,
        scope_code: str,
        body: str | None,
        label: str,
        expires_at: datetime,
        actor: str,
    ) -> None:
        await self.connection.execute(
            MINT_CONSOLE_KEY_SQL,
            key_id,
            secret_hash,
            role.value,
            scope_code,
            body,
            label,
            expires_at,
            actor,
        )

    async def revoke_console_key(self, key_id: str, *, actor: str) -> bool:
        """False when the key was not live or not minted by the console."""
        return bool(await self.connection.fetchval(REVOKE_CONSOLE_KEY_SQL, key_id, actor))

    async def record_expiries(self) -> None:
        """Record every key found expired and not yet recorded so."""
        await self.connection.execute(RECORD_EXPIRIES_SQL)

    async def add_key(
        self,
        *,
        key_id: str,
        secret_hash: str,
        role: Role,
        scope_code: str | None,
        label: str | None,
        expires_at: datetime | None,
        body: str | None = None,
    ) -> None:
        await self.session.execute(
            _keys.insert().values(
                key_id=key_id,
                secret_hash=secret_hash,
                role=role.value,
                scope_code=scope_code,
                body=body,
                label=label,
                expires_at=expires_at,
            )
        )

    async def revoke(self, key_id: str) -> tuple[str, str | None] | None:
        """Mark a live key revoked now; its (role, scope) if it was live."""
        revoked = (
            await self.session.execute(
                _keys.update()
                .where(_keys.c.key_id == key_id, _keys.c.revoked_at.is_(None))
                .values(revoked_at=sa.func.now())
                .returning(_keys.c.role, _keys.c.scope_code)
            )
        ).first()
        return None if revoked is None else (revoked.role, revoked.scope_code)

    async def add_audit(
        self,
        *,
        action: KeyAction,
        key_id: str,
        role: str,
        scope_code: str | None,
        actor: str,
    ) -> None:
        await self.session.execute(
            _audit.insert().values(
                action=action.value, key_id=key_id, role=role, scope_code=scope_code, actor=actor
            )
        )

    async def keys(self) -> list[dict[str, Any]]:
        """Every key without its hash, oldest first."""
        rows = await self.session.execute(
            sa.select(
                _keys.c.key_id,
                _keys.c.role,
                _keys.c.scope_code,
                _keys.c.body,
                _keys.c.label,
                _keys.c.created_at,
                _keys.c.expires_at,
                _keys.c.revoked_at,
            ).order_by(_keys.c.created_at)
        )
        return [dict(r._mapping) for r in rows]

    async def audit(self, *, key_id: str | None = None) -> list[dict[str, Any]]:
        """The audit, oldest first (of one key, if given)."""
        query = sa.select(
            _audit.c.at,
            _audit.c.action,
            _audit.c.key_id,
            _audit.c.role,
            _audit.c.scope_code,
            _audit.c.actor,
        ).order_by(_audit.c.at, _audit.c.id)
        if key_id is not None:
            query = query.where(_audit.c.key_id == key_id)
        return [dict(row._mapping) for row in await self.session.execute(query)]
