from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from shared.config import Settings, settings_or_exit

# Roles a sign-in through the identity provider may carry: never admin (docs/sign-in.md).
OIDC_ROLES = ("reader", "bureau", "desk", "handler")
# Signatures of keys the provider publishes: "none" and shared-secret (HS*) ones never.
OIDC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")


class ConsoleSettings(Settings):
    # The service logs in as its own role when SANWU_DATABASE_URL names no user.
    database_user: str = "sanwu_console"
    console_host: str = "127.0.0.1"
    console_port: int = 8000
    # The services the pages read and act through, with the signed-in user's key.
    intake_url: str = "http://127.0.0.1:8001"
    evaluation_url: str = "http://127.0.0.1:8002"
    reporting_url: str = "http://127.0.0.1:8003"
    applications_url: str = "http://127.0.0.1:8004"
    cases_url: str = "http://127.0.0.1:8005"
    audit_url: str = "http://127.0.0.1:8006"
    # How long a call to one of them may take before the page says the service is down.
    console_api_timeout_seconds: float = Field(10.0, gt=0)
    # How long a page waits for the audit log's part of it (a record's place in the log)
    # before it shows the rest without that part.
    console_audit_timeout_seconds: float = Field(2.0, gt=0)
    # A session ends this long after sign-in, or after this long without a page.
    console_session_hours: float = Field(8.0, gt=0)
    console_session_idle_minutes: float = Field(30.0, gt=0)
    # Failed sign-ins per key id, from any address, before that key's sign-ins get 429 until
    # the window ends (the client address's failures count against SANWU_AUTH_FAILURE_LIMIT).
    console_sign_in_failure_limit: str = "10/minute"
    # Secure (and `__Host-` prefixed) cookies. None: always in production; in local and test
    # runs, when the request came over HTTPS (behind a proxy that says so).
    console_secure_cookies: bool | None = None

    # Sign-in through an identity provider (OIDC, docs/sign-in.md): on when the issuer is set.
    # The console is a confidential client of it (authorization code with PKCE S256).
    console_oidc_issuer: str = ""
    console_oidc_client_id: str = "sanwu-console"
    console_oidc_client_secret: SecretStr = SecretStr("")
    console_oidc_client_secret_file: Path | None = None
    # The console's address as browsers reach it (redirect URIs are built on it); empty: the
    # address each request came to.
    console_public_url: str = ""
    console_oidc_scopes: str = "openid profile"
    # The ID token's signature algorithms accepted, comma-separated (of OIDC_ALGORITHMS).
    console_oidc_algorithms: str = "RS256,PS256,ES256"
    # The claims that carry the user's role, unit code (the scope) and a handler's body.
    console_oidc_role_claim: str = "sanwu_role"
    console_oidc_unit_claim: str = "sanwu_unit"
    console_oidc_body_claim: str = "sanwu_body"
    # The roles taken from the role claim, comma-separated (of OIDC_ROLES); others are refused.
    console_oidc_roles: str = ",".join(OIDC_ROLES)
    # How long the provider's discovery document is kept; its keys are kept until a token
    # names a key they lack (then fetched again, once).
    console_oidc_discovery_seconds: float = Field(3600.0, gt=0)
    console_oidc_timeout_seconds: float = Field(10.0, gt=0)
    # How far the provider's clock may be from ours when expiry and issue times are checked.
    console_oidc_leeway_seconds: int = Field(60, ge=0, le=300)

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.console_oidc_issuer)

    @property
    def oidc_algorithms(self) -> tuple[str, ...]:
        return _listed(self.console_oidc_algorithms)

    @property
    def oidc_roles(self) -> tuple[str, ...]:
        return _listed(self.console_oidc_roles)

    @model_validator(mode="after")
    def _oidc(self) -> "ConsoleSettings":
        if self.console_oidc_client_secret_file is not None:
            text = self.console_oidc_client_secret_file.read_text().strip()
            self.console_oidc_client_secret = SecretStr(text)
        if not self.oidc_enabled:
            return self
        if self.environment == "production" and not self.console_oidc_issuer.startswith("https://"):
            raise ValueError("SANWU_CONSOLE_OIDC_ISSUER must be an https:// URL in production")
        if not self.console_oidc_client_secret.get_secret_value():
            raise ValueError(
                "SANWU_CONSOLE_OIDC_CLIENT_SECRET (or _FILE) must be set with an issuer"
            )
        _within("SANWU_CONSOLE_OIDC_ALGORITHMS", self.oidc_algorithms, OIDC_ALGORITHMS)
        _within("SANWU_CONSOLE_OIDC_ROLES", self.oidc_roles, OIDC_ROLES)
        return self

    @property
    def service_urls(self) -> dict[str, str]:
        return {
            "intake": self.intake_url,
            "evaluation": self.evaluation_url,
            "reporting": self.reporting_url,
            "applications": self.applications_url,
            "cases": self.cases_url,
            "audit": self.audit_url,
        }


def _listed(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _within(name: str, chosen: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    if not chosen or not set(chosen) <= set(allowed):
        raise ValueError(f"{name} takes some of {', '.join(allowed)}, not {', '.join(chosen)}")


@lru_cache
def get_settings() -> ConsoleSettings:
    return settings_or_exit(ConsoleSettings)
