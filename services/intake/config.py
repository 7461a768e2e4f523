from functools import lru_cache

from shared.config import Settings


class IntakeSettings(Settings):
    intake_host: str = "127.0.0.1"
    intake_port: int = 8001
    intake_run_relay: bool = True
    relay_batch_size: int = 1000
    # The relay in the intake process is woken by each accepted event; this bounds how long
    # a relay running on its own (`sanwu intake relay`) leaves a committed event unpublished.
    relay_idle_poll_seconds: float = 0.1
    max_batch_events: int = 1000
    future_tolerance_seconds: int = 300


@lru_cache
def get_settings() -> IntakeSettings:
    return IntakeSettings()
