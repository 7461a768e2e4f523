from functools import lru_cache

from pydantic import Field

from shared.config import Settings, settings_or_exit


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


@lru_cache
def get_settings() -> ConsoleSettings:
    return settings_or_exit(ConsoleSettings)
