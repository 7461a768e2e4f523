"""Sign-in through an identity provider, against a provider answered by hand
(tests/support/oidc_provider.py): the checks of the ID token, the PKCE exchange, the keys fetched
again when the provider rotates them, and the claims mapped to a role and scope."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import ValidationError

from services.console.oidc import OidcClient, SignInRefused
from tests.conftest import COUNTY
from tests.support.oidc_provider import (
    BUREAU,
    CALLBACK,
    CLIENT_ID,
    ISSUER,
    SECRET,
    Provider,
    new_key,
    oidc_settings,
    part,
    sign,
    unsigned,
)


@pytest.fixture
def provider() -> Provider:
    return Provider(now=datetime.now(UTC).replace(microsecond=0), claims=dict(BUREAU))


@pytest.fixture
def oidc(provider: Provider) -> OidcClient:
    return OidcClient(
        oidc_settings(),
        clock=lambda: provider.now,
        transport=httpx.MockTransport(provider.handle),
    )


async def verified(oidc: OidcClient, token: str) -> dict[str, Any]:
    return await oidc.verified_claims(token, nonce="the nonce")


class TestTheIdToken:
    async def test_the_code_is_exchanged_with_the_pkce_verifier_and_the_client_secret(
        self, oidc: OidcClient, provider: Provider
    ) -> None:
        target, pending = await oidc.begin(CALLBACK)
        query = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
        assert target.startswith(f"{ISSUER}/auth?")
        assert query["code_challenge_method"] == "S256"
        digest = hashlib.sha256(pending.verifier.encode()).digest()
        assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        assert (query["state"], query["nonce"]) == (pending.state, pending.nonce)
        assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
        provider.claims["nonce"] = pending.nonce

        person = await oidc.finish(code="the code", pending=pending, redirect_uri=CALLBACK)

        assert (person.role, person.unit, person.body) == ("bureau", COUNTY, None)
        assert person.subject == "f3a1c2d4-person" and person.name == "县信访局 王"
        [sent] = provider.token_requests
        form = {k: v[0] for k, v in parse_qs(sent.content.decode()).items()}
        assert form == {
            "grant_type": "authorization_code",
            "code": "the code",
            "redirect_uri": CALLBACK,
            "code_verifier": pending.verifier,
        }
        basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
        assert sent.headers["authorization"] == f"Basic {basic}"

    async def test_a_tampered_signature_is_refused(
        self, oidc: OidcClient, provider: Provider
    ) -> None:
        header, payload, signature = provider.id_token().split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["sanwu_unit"] = "340700000000"  # the city: a wider scope than signed for
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        with pytest.raises(SignInRefused) as refused:
            await verified(oidc, f"{header}.{forged}.{signature}")
        assert refused.value.reason == "token"

    async def test_an_expired_token_is_refused_past_the_leeway(
        self, oidc: OidcClient, provider: Provider
    ) -> None:
        at = int(provider.now.timestamp())
        assert await verified(oidc, provider.id_token(iat=at - 400, exp=at - 50))  # leeway 60
        with pytest.raises(SignInRefused) as refused:
            await verified(oidc, provider.id_token(iat=at - 400, exp=at - 61))
        assert refused.value.reason == "token"

    @pytest.mark.parametrize(
        "changes",
        [
            {"aud": "another-client"},
            {"aud": [CLIENT_ID, "another-client"], "azp": "another-client"},
            {"iss": "https://idp.example/realms/another"},
            {"exp": None},
            {"iat": None},
            {"nonce": "the nonce of another sign-in"},
            {"nonce": None},
        ],
        ids=["audience", "authorized-party", "issuer", "no-exp", "no-iat", "nonce", "no-nonce"],
    )
    async def test_a_token_not_for_this_sign_in_is_refused(
        self, oidc: OidcClient, provider: Provider, changes: dict[str, Any]
    ) -> None:
        with pytest.raises(SignInRefused) as refused:
            await verified(oidc, provider.id_token(**changes))
        assert refused.value.reason == "token"

    async def test_alg_none_is_refused(self, oidc: OidcClient, provider: Provider) -> None:
        with pytest.raises(SignInRefused) as refused:
            await verified(oidc, unsigned(provider.token_claims()))
        assert refused.value.reason == "token"

    async def test_hs256_keyed_with_the_providers_public_key_is_refused(
        self, oidc: OidcClient, provider: Provider
    ) -> None:
        signed = f"{part({'alg': 'HS256', 'kid': 'k1'})}.{part(provider.token_claims())}"
        public = provider.keys[0].as_pem(private=False)
        mac = hmac.new(public, signed.encode(), hashlib.sha256).digest()
        token = f"{signed}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
        with pytest.raises(SignInRefused) as refused:
            await verified(oidc, token)
        assert refused.value.reason == "token"

    async def test_an_algorithm_outside_the_allow_list_is_refused(self, provider: Provider) -> None:
        strict = OidcClient(
            oidc_settings(console_oidc_algorithms="ES256"),
            clock=lambda: provider.now,
            transport=httpx.MockTransport(provider.handle),
        )
        with pytest.raises(SignInRefused) as refused:
            await verified(strict, provider.id_token())
        assert refused.value.reason == "token"


class TestKeyRotation:
    async def test_a_token_of_a_rotated_in_key_fetches_the_keys_once_more(
        self, oidc: OidcClient, provider: Provider
    ) -> None:
        await verified(oidc, provider.id_token())
        await verified(oidc, provider.id_token())
        assert provider.jwks_fetches == 1  # kept

        provider.keys = [new_key("k2"), *provider.keys]  # the provider rotates
        await verified(oidc, provider.id_token())
        assert provider.jwks_fetches == 2
        await verified(oidc, provider.id_token())
        assert provider.jwks_fetches == 2

    async def test_a_key_the_provider_does_not_publish_is_refused_after_one_fetch(
        self, oidc: OidcClient, provider: Provider
    ) -> None:
        await verified(oidc, provider.id_token())
        stranger = new_key("not-published")
        with pytest.raises(SignInRefused) as refused:
            await verified(oidc, sign(stranger, provider.token_claims()))
        assert refused.value.reason == "token"
        assert provider.jwks_fetches == 2


class TestClaims:
    @pytest.mark.parametrize(
        "claims",
        [
            {},
            {"sanwu_role": "bureau"},
            {"sanwu_unit": COUNTY},
            {"sanwu_role": "admin", "sanwu_unit": COUNTY},
            {"sanwu_role": "bureau", "sanwu_unit": "3407"},
            {"sanwu_role": "handler", "sanwu_unit": COUNTY},
        ],
        ids=["none", "no-unit", "no-role", "admin", "not-a-unit", "handler-without-body"],
    )
    async def test_a_token_without_a_role_and_unit_the_console_takes_is_refused(
        self, oidc: OidcClient, provider: Provider, claims: dict[str, Any]
    ) -> None:
        provider.claims = claims
        token = provider.id_token()
        with pytest.raises(SignInRefused) as refused:
            oidc.identity_of(await verified(oidc, token), id_token=token)
        assert refused.value.reason == "claims"

    async def test_the_claims_are_those_the_settings_name(self, provider: Provider) -> None:
        mapped = OidcClient(
            oidc_settings(console_oidc_role_claim="role", console_oidc_unit_claim="org"),
            clock=lambda: provider.now,
            transport=httpx.MockTransport(provider.handle),
        )
        provider.claims = {"role": "handler", "org": COUNTY, "sanwu_body": "民政"}
        token = provider.id_token()
        person = mapped.identity_of(await verified(mapped, token), id_token=token)
        assert (person.role, person.unit, person.body) == ("handler", COUNTY, "民政")

    def test_production_signs_in_only_through_an_https_issuer(self) -> None:
        with pytest.raises(ValidationError, match="SANWU_CONSOLE_OIDC_ISSUER must be an https"):
            oidc_settings(
                environment="production",
                petitioner_hash_secret="a production secret of at least 32 bytes",
                console_oidc_issuer="http://idp.example",
            )

    @pytest.mark.parametrize(
        "overrides",
        [
            {"console_oidc_algorithms": "RS256,HS256"},
            {"console_oidc_algorithms": "none"},
            {"console_oidc_roles": "reader,admin"},
            {"console_oidc_client_secret": ""},
        ],
        ids=["hs256", "none", "admin", "no-secret"],
    )
    def test_the_settings_refuse_what_the_console_never_takes(
        self, overrides: dict[str, str]
    ) -> None:
        with pytest.raises(ValidationError):
            oidc_settings(**overrides)
