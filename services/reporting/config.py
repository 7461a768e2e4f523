from functools import lru_cache

from shared.config import Settings


class ReportingSettings(Settings):
    reporting_host: str = "127.0.0.1"
    reporting_port: int = 8003


@lru_cache
def get_settings() -> ReportingSettings:
    return ReportingSettings()
