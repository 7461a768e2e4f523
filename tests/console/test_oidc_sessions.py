"""Sign-in through an identity provider, over HTTP against a console run in-process in front of
the real services, the provider answered by hand (tests/support/oidc_provider.py): the key
minted for the session, its revocation at sign-out, the provider's sign-out, the refusal pages;
and what the console's database role may do with keys."""

import base64
import hashlib
import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from services.console.main import create_app
from services.console.oidc import OidcClient
from shared.access.service import claimed_key_id
from shared.db import Database
from tests.conftest import COUNTY
from tests.support.app import serve
from tests.support.console import TOKEN, Clock
from tests.support.oidc_provider import BUREAU, CLIENT_ID, ISSUER, SECRET, Provider
from tests.support.stack import dsn_as


@dataclass
class SigningIn:
    app: FastAPI
    client: httpx.AsyncClient
    provider: Provider
    clock: Clock

    async def through_provider(self) -> httpx.Response:
        """The browser's round trip: to the provider and back to the callback."""
        sent = await self.client.get("/signin/oidc")
        assert sent.status_code == 303, sent.text
        query = {k: v[0] for k, v in parse_qs(urlsplit(sent.headers["location"]).query).items()}
        self.provider.claims["nonce"] = query["nonce"]
        return await self.client.get(
            "/signin/oidc/callback", params={"code": "a code", "state": query["state"]}
        )


@pytest.fixture
async def signing_in(console_stack, clock: Clock) -> AsyncIterator[SigningIn]:
    app = create_app(
        console_stack.console_settings(
            console_oidc_issuer=ISSUER,
            console_oidc_client_id=CLIENT_ID,
            console_oidc_client_secret=SECRET,
        ),
        clock=clock,
    )
    provider = Provider(now=clock.now, claims=dict(BUREAU))
    async with serve(app, "http://console") as client:
        app.state.oidc = OidcClient(
            app.state.settings, clock=clock, transport=httpx.MockTransport(provider.handle)
        )
        yield SigningIn(app=app, client=client, provider=provider, clock=clock)


async def minted_key(db: Database, key_id: str) -> dict[str, Any]:
    async with db.engine.connect() as connection:
        key = (
            await connection.execute(
                sa.text("SELECT * FROM access.api_keys WHERE key_id = :k"), {"k": key_id}
            )
        ).one()
        audit = await connection.execute(
            sa.text("SELECT action, actor FROM access.key_audit WHERE key_id = :k ORDER BY id"),
            {"k": key_id},
        )
        return dict(key._mapping) | {"audit": [tuple(row) for row in audit]}


async def session_key_id(db: Database, client: httpx.AsyncClient) -> str:
    token = client.cookies["sanwu_console"]
    async with db.engine.connect() as connection:
        return str(
            (
                await connection.execute(
                    sa.text("SELECT key_id FROM console.sessions WHERE session_id = :s"),
                    {"s": hashlib.sha256(token.encode()).hexdigest()},
                )
            ).scalar_one()
        )


class TestSessions:
    async def test_a_sign_in_mints_a_key_of_the_claims_role_and_scope_ending_with_the_session(
        self, signing_in: SigningIn, db: Database
    ) -> None:
        answer = await signing_in.through_provider()
        assert answer.status_code == 200 and 'content="0;url=/"' in answer.text
        key_id = await session_key_id(db, signing_in.client)
        key = await minted_key(db, key_id)
        assert (key["role"], key["scope_code"], key["revoked_at"]) == ("bureau", COUNTY, None)
        assert key["expires_at"] == signing_in.clock.now + timedelta(hours=8)
        assert key["audit"] == [
            ("created", "oidc:f3a1c2d4-person"),
            ("signed_in", "console:127.0.0.1"),
        ]
        overview = await signing_in.client.get("/", follow_redirects=True)
        assert overview.status_code == 200 and "枞阳县" in overview.text

        token = TOKEN.search(overview.text)
        assert token is not None
        await signing_in.client.post("/signout", data={"csrf_token": token.group(1)})

        key = await minted_key(db, key_id)
        assert key["revoked_at"] is not None
        assert [action for action, _ in key["audit"]] == [
            "created",
            "signed_in",
            "signed_out",
            "revoked",
        ]

    async def test_sign_out_sends_the_browser_to_end_the_providers_session_too(
        self, signing_in: SigningIn
    ) -> None:
        await signing_in.through_provider()
        page = await signing_in.client.get("/overview")
        token = TOKEN.search(page.text)
        assert token is not None

        answer = await signing_in.client.post("/signout", data={"csrf_token": token.group(1)})

        assert answer.status_code == 200 and "sanwu_console" not in signing_in.client.cookies
        moving_on = re.search(r'content="0;url=([^"]+)"', answer.text)
        assert moving_on is not None
        target = urlsplit(html.unescape(moving_on.group(1)))
        assert f"{target.scheme}://{target.netloc}{target.path}" == f"{ISSUER}/logout"
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        assert query["post_logout_redirect_uri"] == "http://console/signin/oidc/signed-out"
        assert query["client_id"] == CLIENT_ID
        hint = await signing_in.app.state.oidc.verified_claims(
            query["id_token_hint"], nonce=signing_in.provider.claims["nonce"]
        )
        assert hint["sub"] == "f3a1c2d4-person"
        back = await signing_in.client.get("/signin/oidc/signed-out")
        assert back.status_code == 303 and back.headers["location"] == "/signin?notice=signed_out"

    async def test_the_session_cannot_open_another_units_pages(self, signing_in: SigningIn) -> None:
        await signing_in.through_provider()
        city = await signing_in.client.get("/overview", params={"unit": "340700000000"})
        assert city.status_code == 403 and "无权查看" in city.text

    async def test_a_callback_of_no_sign_in_of_this_browser_is_refused(
        self, signing_in: SigningIn
    ) -> None:
        await signing_in.client.get("/signin/oidc")
        answer = await signing_in.client.get(
            "/signin/oidc/callback", params={"code": "a code", "state": "another state"}
        )
        assert answer.status_code == 400 and "登录请求已失效" in answer.text
        assert "sanwu_console" not in signing_in.client.cookies
        assert signing_in.provider.token_requests == []

    async def test_a_token_without_the_claims_is_refused_with_a_page_in_chinese(
        self, signing_in: SigningIn
    ) -> None:
        signing_in.provider.claims = {}
        answer = await signing_in.through_provider()
        assert answer.status_code == 403
        assert "没有配置本系统可用的角色和所属单位" in answer.text
        assert "sanwu_console" not in signing_in.client.cookies

    async def test_an_expired_token_is_refused_with_a_page_in_chinese(
        self, signing_in: SigningIn
    ) -> None:
        signing_in.provider.now = signing_in.clock.now - timedelta(hours=1)
        answer = await signing_in.through_provider()
        assert answer.status_code == 403 and "身份令牌无效" in answer.text

    async def test_a_unit_the_registry_does_not_hold_is_refused(
        self, signing_in: SigningIn
    ) -> None:
        signing_in.provider.claims["sanwu_unit"] = "349999000000"
        answer = await signing_in.through_provider()
        assert answer.status_code == 403 and "sanwu_console" not in signing_in.client.cookies

    async def test_a_pending_sign_in_is_sealed(self, signing_in: SigningIn) -> None:
        sent = await signing_in.client.get("/signin/oidc")
        state = parse_qs(urlsplit(sent.headers["location"]).query)["state"][0]
        cookie = sent.headers["set-cookie"]
        assert "SameSite=lax" in cookie and "HttpOnly" in cookie
        value = cookie.split(";")[0].split("=", 1)[1]
        assert state not in base64.urlsafe_b64decode(value).decode(errors="replace")


class TestTheDatabaseRole:
    """The console's role mints and revokes keys only through the functions of migration
    0010_shared, which refuse what the console never needs."""

    MINT = "SELECT access.mint_console_key($1, 'x', $2, $3, NULL, 'l', $4, $5)"
    REVOKE = "SELECT access.revoke_console_key($1, 'console:x')"

    async def test_it_mints_and_revokes_a_key_for_a_session(self, as_console) -> None:
        soon = datetime.now(UTC) + timedelta(hours=8)
        await as_console.execute(self.MINT, "minted", "bureau", COUNTY, soon, "oidc:x")
        assert await as_console.fetchval(self.REVOKE, "minted") is True
        assert await as_console.fetchval(self.REVOKE, "minted") is False

    async def test_it_mints_no_admin_key_no_long_one_and_none_without_a_scope(
        self, as_console
    ) -> None:
        soon = datetime.now(UTC) + timedelta(hours=1)
        refused = [
            ("admin", COUNTY, soon, "oidc:x"),
            ("bureau", COUNTY, soon + timedelta(days=2), "oidc:x"),
            ("bureau", None, soon, "oidc:x"),
            ("bureau", COUNTY, soon, "user:x"),
        ]
        for n, (role, scope, until, actor) in enumerate(refused):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await as_console.execute(self.MINT, f"refused{n}", role, scope, until, actor)
        for statement in (
            "UPDATE access.api_keys SET revoked_at = now() WHERE role = 'admin'",
            "INSERT INTO access.api_keys (key_id, secret_hash, role) VALUES ('p', 'x', 'admin')",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await as_console.execute(statement)

    async def test_it_revokes_no_key_it_did_not_mint(
        self, as_console, console_stack, db: Database
    ) -> None:
        key_id = str(claimed_key_id(f"Bearer {console_stack.keys['county_reader']}"))
        assert await as_console.fetchval(self.REVOKE, key_id) is False
        assert (await minted_key(db, key_id))["revoked_at"] is None


@pytest.fixture
async def as_console(console_stack) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the console stack's database as the console's role."""
    database = make_url(console_stack.settings.database_url).database
    connection = await asyncpg.connect(dsn_as("sanwu_console", str(database)))
    assert await connection.fetchval("SELECT current_user") == "sanwu_console"
    yield connection
    await connection.close()
