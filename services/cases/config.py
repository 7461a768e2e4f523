from functools import lru_cache

from pydantic import Field

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

    @property
    def events_consumer_group(self) -> str:
        """Groups are broker-wide: namespaced like the topics."""
        return f"{self.topic_prefix}cases-events"


@lru_cache
def get_settings() -> CasesSettings:
    return settings_or_exit(CasesSettings)
