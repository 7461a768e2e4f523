"""Signed-in sessions: the key stays on the server, the browser holds only a random token.

The cookie carries the token; the table keys the session by the token's hash and keeps the
key sealed (AES-GCM) under a key derived from the token, so neither the table alone nor the cookie
alone gives the key. A session ends at sign-out, `console_session_hours` after sign-in, after
`console_session_idle_minutes` without a page, and at once when its key is revoked or expires
(every page checks the key through the shared key cache, which hears of revocations).

Each sign-in, refused sign-in (of a key that exists) and sign-out is recorded in the key audit
(`access.key_audit`, by `console:<client address>`), a sign-in and sign-out in the transaction
of its session. Failed sign-ins count against the client address's limit and the key id's: past
either, sign-ins from that address, or of that key, get 429 until the window ends.

A person an identity provider signed in (`services/console/oidc.py`) gets a key minted for the
session, of the role and scope their token's claims give, ending with the session (created by
`oidc:<subject>` in the key audit); it is sealed like a pasted key, with the ID token beside it
for the provider's sign-out, and revoked at sign-out (docs/sign-in.md).
"""

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.console.oidc import Identity
from services.console.repository import SessionRepository, SessionRow
from shared.access.cache import KeyCache
from shared.access.models import KeyAction, Role
from shared.access.repository import KeyRepository
from shared.access.service import claimed_key_id, console_actor, mint_for_console
from shared.db import Database
from shared.errors import DependencyUnavailable, Unauthenticated
from shared.ratelimit import FailedAuthentications
from shared.retry import keep_running

log = structlog.get_logger(__name__)

# A page refreshes a session's last-seen time at most this often (a write per minute, not
# per page).
TOUCH_EVERY = timedelta(seconds=60)
# A minted key lives as long as its session, and never longer than this (the database refuses
# to mint a longer one: migration 0010_shared).
MINTED_AT_MOST = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    key_id: str
    key: str
    role: str
    scope_code: str | None
    csrf_token: str
    # Signed in through the identity provider: its ID token (the provider's sign-out is asked
    # with it); the key was minted for this session.
    id_token: str | None = None

    @property
    def authorization(self) -> str:
        return f"Bearer {self.key}"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def session_id_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# AES-GCM under a key derived from the session's token: the table alone cannot give the API
# key, and a sealed key altered in the table fails to open rather than opening to another key.
SEAL_CONTEXT = b"sanwu-console-session-key"
NONCE_BYTES = 12


def _cipher(token: str) -> AESGCM:
    return AESGCM(hashlib.sha256(SEAL_CONTEXT + b"\x00" + token.encode()).digest())


def seal(key: str, token: str) -> bytes:
    """`key`: the key, or the key and an ID token on two lines."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + _cipher(token).encrypt(nonce, key.encode(), SEAL_CONTEXT)


def unseal(sealed: bytes, token: str) -> str | None:
    """What was sealed, or None when the sealed bytes do not open with this token."""
    try:
        plain = _cipher(token).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], SEAL_CONTEXT)
    except InvalidTag:
        return None
    return plain.decode()


def tokens_match(sent: str | None, expected: str) -> bool:
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


class SessionStore:
    def __init__(
        self,
        *,
        db: Database,
        keys: KeyCache,
        lifetime: timedelta,
        idle: timedelta,
        clock: Callable[[], datetime],
        key_failures: FailedAuthentications | None = None,
    ) -> None:
        self.db = db
        self.keys = keys
        self.lifetime = lifetime
        self.idle = idle
        self.clock = clock
        self.key_failures = key_failures or FailedAuthentications("")

    async def sign_in(self, key: str, *, address: str) -> tuple[str, Session]:
        """The new session's token and the session; Unauthenticated for a bad key, RateLimited
        past the address's or the key id's failed sign-ins."""
        key = key.strip()
        authorization = f"Bearer {key}"
        key_id = claimed_key_id(authorization)
        # Before any look-up, also of a key this process holds: guessing a held key's secret
        # costs no look-up, and is what these limits stop.
        self.keys.failures.check(address)
        if key_id is not None:
            self.key_failures.check(key_id)
        try:
            principal = await self.keys.authenticate(authorization, address=address)
        except Unauthenticated:
            if key_id is not None:
                self.key_failures.count(key_id)
                await self._refused(key_id, address=address)
            raise
        token = new_token()
        now = self.clock()
        row = SessionRow(
            session_id=session_id_of(token),
            key_id=principal.key_id,
            sealed_key=seal(key, token),
            role=principal.role.value,
            scope_code=principal.scope_code,
            csrf_token=new_token(),
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.lifetime,
        )
        async with self.db.connection(commits=True) as connection:
            await SessionRepository(connection).insert(row)
            await KeyRepository(connection).record_use(
                principal.key_id, action=KeyAction.signed_in, actor=console_actor(address)
            )
        log.info("console_signed_in", key_id=principal.key_id, role=row.role, client=address)
        session = self._session(row, token)
        assert session is not None  # sealed just now with this token
        return token, session

    async def sign_in_as(self, person: Identity, *, address: str) -> tuple[str, Session]:
        """The new session's token and the session of a person the identity provider signed
        in, with a key of their role and scope minted for it that ends with the session."""
        token = new_token()
        now = self.clock()
        expires_at = now + min(self.lifetime, MINTED_AT_MOST)
        async with self.db.connection(commits=True) as connection, connection.transaction():
            key = await mint_for_console(
                connection,
                role=Role(person.role),
                scope_code=person.unit,
                body=person.body,
                expires_at=expires_at,
                subject=person.subject,
                label=f"console sign-in of {person.name}",
            )
            key_id = claimed_key_id(f"Bearer {key}")
            assert key_id is not None  # minted just now in the form it checks
            row = SessionRow(
                session_id=session_id_of(token),
                key_id=key_id,
                sealed_key=seal(f"{key}\n{person.id_token}", token),
                role=person.role,
                scope_code=person.unit,
                csrf_token=new_token(),
                created_at=now,
                last_seen_at=now,
                expires_at=expires_at,
            )
            await SessionRepository(connection).insert(row)
            await KeyRepository(connection).record_use(
                key_id, action=KeyAction.signed_in, actor=console_actor(address)
            )
        log.info("console_signed_in_oidc", key_id=key_id, role=row.role, client=address)
        session = self._session(row, token)
        assert session is not None  # sealed just now with this token
        return token, session

    async def current(self, token: str | None, *, address: str) -> Session | None:
        """The session of a cookie's token, None when there is none or it has ended. A key
        revoked or expired since sign-in ends every session of that key (Unauthenticated)."""
        if not token:
            return None
        async with self.db.connection(commits=True) as connection:
            repository = SessionRepository(connection)
            row = await repository.get(session_id_of(token))
            if row is None:
                return None
            now = self.clock()
            if row.expires_at <= now or row.last_seen_at + self.idle <= now:
                await repository.delete(row.session_id)
                return None
            if now - row.last_seen_at >= TOUCH_EVERY:
                await repository.touch(row.session_id, seen_at=now)
        session = self._session(row, token)
        if session is None:  # altered in the table: it opens to nothing
            return None
        try:
            await self.keys.authenticate(session.authorization, address=address)
        except Unauthenticated:
            await self.end_sessions_of(session.key_id)
            raise
        return session

    async def sign_out(self, session: Session, *, address: str) -> None:
        """Ends the session; a key minted for it is revoked."""
        async with self.db.connection(commits=True) as connection, connection.transaction():
            await SessionRepository(connection).delete(session.session_id)
            keys = KeyRepository(connection)
            await keys.record_use(
                session.key_id, action=KeyAction.signed_out, actor=console_actor(address)
            )
            if session.id_token is not None:
                await keys.revoke_console_key(session.key_id, actor=console_actor(address))
        log.info("console_signed_out", key_id=session.key_id, client=address)

    async def _refused(self, key_id: str, *, address: str) -> None:
        """The audit's row for a refused sign-in of a key that exists. Not written (the
        database away), the refusal stands: it is logged and counted all the same."""
        try:
            async with self.db.connection(commits=True) as connection:
                await KeyRepository(connection).record_use(
                    key_id, action=KeyAction.sign_in_refused, actor=console_actor(address)
                )
        except DependencyUnavailable as exc:
            log.warning("sign_in_refusal_not_recorded", key_id=key_id, error=exc.detail)

    async def end_sessions_of(self, key_id: str) -> None:
        async with self.db.connection(commits=True) as connection:
            ended = await SessionRepository(connection).delete_of_key(key_id)
        log.info("console_sessions_ended", key_id=key_id, sessions=ended)

    async def purge_expired(self) -> int:
        now = self.clock()
        async with self.db.connection(commits=True) as connection:
            return await SessionRepository(connection).delete_expired(
                now=now, idle_since=now - self.idle
            )

    async def keep_purging(self, interval: float = 600.0) -> None:
        async def purge_then_wait() -> None:
            await self.purge_expired()
            await asyncio.sleep(interval)

        await keep_running(purge_then_wait, event="console_session_purge")

    @staticmethod
    def _session(row: SessionRow, token: str) -> Session | None:
        sealed = unseal(row.sealed_key, token)
        if sealed is None:
            return None
        key, _, id_token = sealed.partition("\n")
        return Session(
            session_id=row.session_id,
            key_id=row.key_id,
            key=key,
            role=row.role,
            scope_code=row.scope_code,
            csrf_token=row.csrf_token,
            id_token=id_token or None,
        )
