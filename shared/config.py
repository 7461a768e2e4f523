"""Settings shared by every service: one pydantic-settings base, read from SANWU_* variables.

Defaults match the local stack started by `make up`. Secrets have a usable default only when
`SANWU_ENVIRONMENT=local`; anywhere else they must be set.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_CAMPAIGN_FILE = Path(__file__).resolve().parents[1] / "campaign" / "zongyang-2018.yaml"
LOCAL_ONLY_SECRET = "local-only-petitioner-hash-secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANWU_", extra="ignore")

    environment: Literal["local", "test", "production"] = "local"
    database_url: str = "postgresql+asyncpg://sanwu@127.0.0.1:55432/sanwu"
    database_pool_size: int = 10
    kafka_bootstrap_servers: str = "127.0.0.1:59092"
    topic_prefix: str = "sanwu."
    event_partitions: int = 6
    status_partitions: int = 6
    petitioner_hash_secret: str = LOCAL_ONLY_SECRET
    registry_refresh_seconds: float = 2.0
    log_level: str = "INFO"
    log_json: bool = True
    campaign_file: Path = DEFAULT_CAMPAIGN_FILE
    # Per key, in the `limits` notation ("2000/second", "100000/minute"); empty turns it off.
    rate_limit: str = "2000/second"
    request_body_timeout_seconds: float = 30.0

    @property
    def events_topic(self) -> str:
        return f"{self.topic_prefix}petition-events"

    @property
    def status_topic(self) -> str:
        return f"{self.topic_prefix}unit-status"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic_prefix}dead-letter"

    @model_validator(mode="after")
    def _refuse_default_secret_outside_local(self) -> "Settings":
        if self.environment == "production" and self.petitioner_hash_secret == LOCAL_ONLY_SECRET:
            raise ValueError("SANWU_PETITIONER_HASH_SECRET must be set outside local runs")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
