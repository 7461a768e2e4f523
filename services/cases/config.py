from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator

from shared.config import Settings, settings_or_exit


class CasesSettings(Settings):
    # The service logs in as its own role when SANWU_DATABASE_URL names no user.
    database_user: str = "sanwu_cases"
    cases_host: str = "127.0.0.1"
    cases_port: int = 8005
    cases_run_relay: bool = True
    cases_run_consumer: bool = True
    cases_batch_size: int = Field(500, ge=1)
    cases_relay_idle_poll_seconds: float = Field(1.0, gt=0)
    # How often the open cases' clocks are looked at for warnings as the days pass (a step
    # looks at its own case at once).
    cases_clock_watch_seconds: float = Field(300.0, gt=0)
    # Fault injection for the crash tests: the process exits abruptly at that point of the
    # first decision or review it makes.
    cases_crash_at: Literal["before_commit", "after_commit"] | None = None

    @model_validator(mode="after")
    def _no_faults_in_production(self) -> "CasesSettings":
        if self.environment == "production" and self.cases_crash_at:
            raise ValueError("crash points are for tests, not production")
        return self

    @property
    def events_consumer_group(self) -> str:
        """Groups are broker-wide: namespaced like the topics."""
        return f"{self.topic_prefix}cases-events"


@lru_cache
def get_settings() -> CasesSettings:
    return settings_or_exit(CasesSettings)
