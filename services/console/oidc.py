"""Sign-in through an OpenID Connect identity provider (docs/sign-in.md).

The console is a confidential client of the provider: the authorization code flow with PKCE
(S256), a state and a nonce; the code is exchanged with the client secret, and the ID token the
token endpoint answers with is checked here: signed by a key of the provider's JWKS with an
algorithm of the allow-list (never `none`, never a shared secret), issued by the configured
issuer for this client (audience, and authorized party when there are several), not expired,
not issued in the future, and carrying the nonce of this sign-in. The provider's discovery
document is kept for `console_oidc_discovery_seconds`; its keys are kept until a token names a
key they lack, and then fetched again once, so a rotation of the provider's keys is followed.
The person's role, unit and a handler's body come from the claims the settings name.
"""

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import structlog
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

from services.console.config import ConsoleSettings

log = structlog.get_logger(__name__)

UNIT_CODE = re.compile(r"[0-9]{12}")
# A sign-in started (the browser sent to the provider) must come back within this long.
PENDING_SECONDS = 600
REFUSAL_STATUS = {"state": 400, "denied": 403, "provider": 503, "token": 403, "claims": 403}


class SignInRefused(Exception):
    """A sign-in the console refuses. `reason`: state (the callback is not of a sign-in this
    browser started, or its code is spent), denied (the provider did not sign the person in),
    provider (unreachable or answering wrongly), token (the ID token fails a check), claims
    (the token lacks a role, unit or body the console takes)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.status = REFUSAL_STATUS[reason]


@dataclass(frozen=True, slots=True)
class Provider:
    """What the console uses of the provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None

    @classmethod
    def of(cls, document: dict[str, Any], *, issuer: str) -> "Provider":
        if document.get("issuer") != issuer:
            raise SignInRefused("provider", f"discovery names issuer {document.get('issuer')!r}")
        try:
            return cls(
                issuer=issuer,
                authorization_endpoint=str(document["authorization_endpoint"]),
                token_endpoint=str(document["token_endpoint"]),
                jwks_uri=str(document["jwks_uri"]),
                end_session_endpoint=document.get("end_session_endpoint"),
            )
        except KeyError as missing:
            raise SignInRefused("provider", f"discovery lacks {missing}") from None


@dataclass(frozen=True, slots=True)
class Pending:
    """A sign-in sent to the provider, kept by the browser (sealed) until it comes back."""

    state: str
    nonce: str
    verifier: str
    started: float  # epoch seconds

    @classmethod
    def new(cls, now: float) -> "Pending":
        return cls(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            verifier=secrets.token_urlsafe(48),
            started=now,
        )

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str) -> "Pending | None":
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError):
            return None

    def matches(self, state: str, *, now: float) -> bool:
        fresh = now - self.started < PENDING_SECONDS
        return fresh and hmac.compare_digest(self.state.encode(), state.encode())


@dataclass(frozen=True, slots=True)
class Identity:
    """A person the provider signed in, as the console acts for them."""

    subject: str
    name: str
    role: str
    unit: str
    body: str | None
    id_token: str


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def header_of(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, unverified (to choose the key and check the alg)."""
    first = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)))
    except (ValueError, binascii.Error):
        raise SignInRefused("token", "the ID token's header does not parse") from None
    if not isinstance(header, dict):
        raise SignInRefused("token", "the ID token's header is not an object")
    return header


class SigningKeys:
    """The provider's public keys (its JWKS), kept once fetched. A token naming a key id they
    lack fetches them again, once for that token: a rotated-in key is found, an unknown one is
    refused after that one fetch."""

    def __init__(self, fetch: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self._fetch = fetch
        self._keys: KeySet | None = None
        self.fetches = 0

    async def key_for(self, kid: str | None) -> Key:
        if self._keys is not None:
            key = self._find(self._keys, kid)
            if key is not None:
                return key
        self._keys = await self._load()
        key = self._find(self._keys, kid)
        if key is None:
            raise SignInRefused("token", f"the provider publishes no key {kid!r}")
        return key

    async def _load(self) -> KeySet:
        self.fetches += 1
        try:
            return KeySet.import_key_set(await self._fetch())  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise SignInRefused("provider", f"the provider's keys do not parse: {exc}") from None

    @staticmethod
    def _find(keys: KeySet, kid: str | None) -> Key | None:
        if kid is None:  # a provider with one key may leave kid out
            return keys.keys[0] if len(keys.keys) == 1 else None
        return next((key for key in keys.keys if key.kid == kid), None)


class OidcClient:
    """The console's side of the sign-in, for one configured provider."""

    def __init__(
        self,
        settings: ConsoleSettings,
        *,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.transport = transport
        self._provider: Provider | None = None
        self._provider_until = 0.0
        self.keys = SigningKeys(self._jwks)

    @property
    def client_id(self) -> str:
        return self.settings.console_oidc_client_id

    async def begin(self, redirect_uri: str) -> tuple[str, Pending]:
        """Where to send the browser, and what it must bring back."""
        provider = await self.provider()
        pending = Pending.new(self.clock().timestamp())
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.settings.console_oidc_scopes,
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": pkce_challenge(pending.verifier),
            "code_challenge_method": "S256",
        }
        return f"{provider.authorization_endpoint}?{urlencode(query)}", pending

    async def finish(self, *, code: str, pending: Pending, redirect_uri: str) -> Identity:
        """The person the code stands for, once the provider's ID token passes every check."""
        provider = await self.provider()
        answer = await self._post(
            provider.token_endpoint,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": pending.verifier,
            },
        )
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused("provider", "the token endpoint sent no ID token")
        claims = await self.verified_claims(id_token, nonce=pending.nonce)
        return self.identity_of(claims, id_token=id_token)

    async def verified_claims(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        provider = await self.provider()
        header = header_of(id_token)
        algorithm = header.get("alg")
        if algorithm not in self.settings.oidc_algorithms:
            raise SignInRefused("token", f"the ID token is signed with {algorithm!r}")
        key = await self.keys.key_for(header.get("kid"))
        try:
            token = jwt.decode(id_token, key, algorithms=[algorithm])
            self._registry(provider).validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise SignInRefused("token", f"the ID token fails: {exc}") from None
        claims = token.claims
        audiences = [claims["aud"]] if isinstance(claims["aud"], str) else list(claims["aud"])
        if self.client_id not in audiences:
            raise SignInRefused("token", "the ID token is not for this client")
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise SignInRefused("token", "the ID token's authorized party is another client")
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
            raise SignInRefused("token", "the ID token's nonce is not this sign-in's")
        return claims

    def identity_of(self, claims: dict[str, Any], *, id_token: str) -> Identity:
        """The role, unit and body the settings' claims give; refused when one is missing or
        not one the console takes (never admin)."""
        settings = self.settings
        role = claims.get(settings.console_oidc_role_claim)
        unit = claims.get(settings.console_oidc_unit_claim)
        body = claims.get(settings.console_oidc_body_claim)
        if not isinstance(role, str) or role not in settings.oidc_roles:
            raise SignInRefused("claims", f"role claim {role!r} is not one the console takes")
        if not isinstance(unit, str) or not UNIT_CODE.fullmatch(unit):
            raise SignInRefused("claims", f"unit claim {unit!r} is not a unit code")
        if role == "handler" and not (isinstance(body, str) and body):
            raise SignInRefused("claims", "a handler's token names no body")
        name = claims.get("name") or claims.get("preferred_username") or claims["sub"]
        return Identity(
            subject=claims["sub"],
            name=str(name),
            role=role,
            unit=unit,
            body=body if role == "handler" else None,
            id_token=id_token,
        )

    async def end_session_url(self, *, id_token: str, post_logout_redirect_uri: str) -> str | None:
        """Where the browser ends its session at the provider; None when it has no such
        endpoint (the console's sign-out then ends only the console's session)."""
        provider = await self.provider()
        if provider.end_session_endpoint is None:
            return None
        query = {
            "id_token_hint": id_token,
            "client_id": self.client_id,
            "post_logout_redirect_uri": post_logout_redirect_uri,
        }
        return f"{provider.end_session_endpoint}?{urlencode(query)}"

    async def provider(self) -> Provider:
        if self._provider is None or time.monotonic() >= self._provider_until:
            issuer = self.settings.console_oidc_issuer.rstrip("/")
            document = await self._get(f"{issuer}/.well-known/openid-configuration")
            self._provider = Provider.of(document, issuer=issuer)
            self._provider_until = time.monotonic() + self.settings.console_oidc_discovery_seconds
        return self._provider

    def _registry(self, provider: Provider) -> jwt.JWTClaimsRegistry:
        return jwt.JWTClaimsRegistry(
            now=lambda: int(self.clock().timestamp()),
            leeway=self.settings.console_oidc_leeway_seconds,
            iss={"essential": True, "value": provider.issuer},
            sub={"essential": True},
            aud={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )

    async def _jwks(self) -> dict[str, Any]:
        return await self._get((await self.provider()).jwks_uri)

    async def _get(self, url: str) -> dict[str, Any]:
        async with self._http() as http:
            return _json_of(await _sent(http.get(url)), url)

    async def _post(self, url: str, form: dict[str, str]) -> dict[str, Any]:
        secret = self.settings.console_oidc_client_secret.get_secret_value()
        async with self._http() as http:
            answer = _json_of(
                await _sent(http.post(url, data=form, auth=(self.client_id, secret))), url
            )
        return answer

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self.transport,
            timeout=self.settings.console_oidc_timeout_seconds,
            follow_redirects=False,
        )


async def _sent(request: Awaitable[httpx.Response]) -> httpx.Response:
    try:
        return await request
    except httpx.HTTPError as exc:
        raise SignInRefused("provider", f"the provider did not answer: {exc!r}") from None


def _json_of(response: httpx.Response, url: str) -> dict[str, Any]:
    if response.status_code != 200:
        # The token endpoint refusing a code (used, expired, or a PKCE verifier that does not
        # match) is a sign-in to start again, not a provider that is down.
        reason = "state" if response.status_code == 400 else "provider"
        raise SignInRefused(reason, f"{url} answered {response.status_code}: {response.text[:200]}")
    try:
        document = response.json()
    except ValueError:
        raise SignInRefused("provider", f"{url} answered no JSON") from None
    if not isinstance(document, dict):
        raise SignInRefused("provider", f"{url} answered no JSON object")
    return document
