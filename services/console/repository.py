"""All of the console's SQL: its sessions, one row each, read on every page by primary key."""

from dataclasses import dataclass
from datetime import datetime

from shared.repository import Repository, rows_affected


@dataclass(frozen=True, slots=True)
class SessionRow:
    session_id: str
    key_id: str
    sealed_key: bytes
    role: str
    scope_code: str | None
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


class SessionRepository(Repository):
    async def insert(self, row: SessionRow) -> None:
        await self.connection.execute(
            "INSERT INTO console.sessions (session_id, key_id, sealed_key, role, scope_code, "
            "csrf_token, created_at, last_seen_at, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            row.session_id,
            row.key_id,
            row.sealed_key,
            row.role,
            row.scope_code,
            row.csrf_token,
            row.created_at,
            row.last_seen_at,
            row.expires_at,
        )

    async def get(self, session_id: str) -> SessionRow | None:
        record = await self.connection.fetchrow(
            "SELECT session_id, key_id, sealed_key, role, scope_code, csrf_token, created_at, "
            "last_seen_at, expires_at FROM console.sessions WHERE session_id = $1",
            session_id,
        )
        return None if record is None else SessionRow(**dict(record))

    async def touch(self, session_id: str, *, seen_at: datetime) -> None:
        await self.connection.execute(
            "UPDATE console.sessions SET last_seen_at = $2 WHERE session_id = $1",
            session_id,
            seen_at,
        )

    async def delete(self, session_id: str) -> None:
        await self.connection.execute(
            "DELETE FROM console.sessions WHERE session_id = $1", session_id
        )

    async def delete_of_key(self, key_id: str) -> int:
        status = await self.connection.execute(
            "DELETE FROM console.sessions WHERE key_id = $1", key_id
        )
        return rows_affected(status)

    async def delete_expired(self, *, now: datetime, idle_since: datetime) -> int:
        status = await self.connection.execute(
            "DELETE FROM console.sessions WHERE expires_at <= $1 OR last_seen_at <= $2",
            now,
            idle_since,
        )
        return rows_affected(status)
