from functools import lru_cache

from shared.config import Settings


class IntakeSettings(Settings):
    intake_host: str = "127.0.0.1"
    intake_port: int = 8001
    intake_run_relay: bool = True
    relay_batch_size: int = 1000
    relay_idle_poll_seconds: float = 1.0
    max_batch_events: int = 1000
    future_tolerance_seconds: int = 300


@lru_cache
def get_settings() -> IntakeSettings:
    return IntakeSettings()
