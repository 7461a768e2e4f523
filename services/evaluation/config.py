from functools import lru_cache

from shared.config import Settings


class EvaluationSettings(Settings):
    evaluation_host: str = "127.0.0.1"
    evaluation_port: int = 8002


@lru_cache
def get_settings() -> EvaluationSettings:
    return EvaluationSettings()
