"""An OpenID Connect provider answered by hand, for the console's sign-in tests: its discovery
document, its keys (which a test may rotate) and a token endpoint that signs what the test says
with its first key."""

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from services.console.config import ConsoleSettings
from tests.conftest import COUNTY

ISSUER = "https://idp.example/realms/sanwu"
CLIENT_ID = "sanwu-console"
SECRET = "a client secret for these tests"
CALLBACK = "http://console/signin/oidc/callback"
BUREAU = {"sanwu_role": "bureau", "sanwu_unit": COUNTY, "name": "县信访局 王"}


def oidc_settings(**overrides: Any) -> ConsoleSettings:
    """A console's settings for this provider."""
    return ConsoleSettings(
        **{
            "environment": "test",
            "console_oidc_issuer": ISSUER,
            "console_oidc_client_id": CLIENT_ID,
            "console_oidc_client_secret": SECRET,
            **overrides,
        }
    )


@dataclass
class Provider:
    """An identity provider answered by hand: it signs what `claims` says with its first key."""

    now: datetime
    keys: list[RSAKey] = field(default_factory=lambda: [new_key("k1")])
    claims: dict[str, Any] = field(default_factory=dict)
    jwks_fetches: int = 0
    token_requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix(urlsplit(ISSUER).path)
        if path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=self.discovery())
        if path == "/certs":
            self.jwks_fetches += 1
            return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in self.keys]})
        if path == "/token":
            self.token_requests.append(request)
            return httpx.Response(200, json={"id_token": self.id_token(), "token_type": "Bearer"})
        return httpx.Response(404)

    def discovery(self) -> dict[str, str]:
        return {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/auth",
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": f"{ISSUER}/certs",
            "end_session_endpoint": f"{ISSUER}/logout",
        }

    def id_token(self, **changes: Any) -> str:
        return sign(self.keys[0], self.token_claims(**changes))

    def token_claims(self, **changes: Any) -> dict[str, Any]:
        at = int(self.now.timestamp())
        base = {
            "iss": ISSUER,
            "sub": "f3a1c2d4-person",
            "aud": CLIENT_ID,
            "iat": at,
            "exp": at + 300,
            "nonce": "the nonce",
        }
        return {k: v for k, v in (base | self.claims | changes).items() if v is not None}


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid})


def sign(key: RSAKey, claims: dict[str, Any], *, alg: str = "RS256") -> str:
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key)


def part(value: dict[str, Any]) -> str:
    """A JWS part: JSON in base64url without padding."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any]) -> str:
    return f"{part({'alg': 'none', 'kid': 'k1'})}.{part(claims)}."
