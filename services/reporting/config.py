from functools import lru_cache

from shared.config import Settings, settings_or_exit


class ReportingSettings(Settings):
    # The service logs in as its own role when SANWU_DATABASE_URL names no user.
    database_user: str = "sanwu_reporting"
    reporting_host: str = "127.0.0.1"
    reporting_port: int = 8003
    reporting_run_consumer: bool = True
    reporting_consumer_group: str | None = None
    reporting_batch_size: int = 500

    @property
    def consumer_group(self) -> str:
        """Groups are broker-wide: by default namespaced like the topics."""
        return self.reporting_consumer_group or f"{self.topic_prefix}reporting"

    @property
    def indicator_consumer_group(self) -> str:
        """The indicator and warning topics are read by groups of their own, so each topic's
        offsets, lag and dead letters stand apart from the statuses'."""
        return f"{self.consumer_group}-indicators"

    @property
    def warning_consumer_group(self) -> str:
        return f"{self.consumer_group}-warnings"

    @property
    def dispute_consumer_group(self) -> str:
        return f"{self.consumer_group}-disputes"


@lru_cache
def get_settings() -> ReportingSettings:
    return settings_or_exit(ReportingSettings)
