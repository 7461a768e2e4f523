from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator

from shared.config import Settings, settings_or_exit


class ApplicationsSettings(Settings):
    # The service logs in as its own role when SANWU_DATABASE_URL names no user.
    database_user: str = "sanwu_applications"
    applications_host: str = "127.0.0.1"
    applications_port: int = 8004
    applications_run_relay: bool = True
    applications_run_consumer: bool = True
    applications_consumer_group: str | None = None
    applications_batch_size: int = Field(500, ge=1)
    # Where a submission asks for its units' case rates (the evidence): SANWU_CASES_URL, which
    # `make run`, compose and the cluster set; empty: not asked, and the evidence says so.
    cases_url: str = ""
    applications_cases_timeout_seconds: float = Field(10.0, gt=0)
    # A relay in another process than the one writing steps is woken by the outbox's NOTIFY;
    # this bounds the wait when a notification is missed.
    applications_relay_idle_poll_seconds: float = Field(1.0, gt=0)
    # "MM-DD/MM-DD": the application window instead of the campaign's, for a demo that must be
    # tried outside December; empty: the campaign's window.
    application_window: str = Field("", pattern=r"^$|^\d\d-\d\d/\d\d-\d\d$")
    # Fault injection for the crash tests: the status consumer exits abruptly at that point of
    # the first batch that applies a status (after its transaction: before the offsets).
    applications_crash_at: Literal["before_commit", "after_commit"] | None = None

    @property
    def consumer_group(self) -> str:
        """Groups are broker-wide: by default namespaced like the topics."""
        return self.applications_consumer_group or f"{self.topic_prefix}applications"

    @property
    def indicator_consumer_group(self) -> str:
        """The indicator topic is read by a group of its own."""
        return f"{self.consumer_group}-indicators"

    @model_validator(mode="after")
    def _no_faults_in_production(self) -> "ApplicationsSettings":
        if self.environment == "production" and self.applications_crash_at:
            raise ValueError("crash points are for tests, not production")
        return self


@lru_cache
def get_settings() -> ApplicationsSettings:
    return settings_or_exit(ApplicationsSettings)
