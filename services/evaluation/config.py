import os
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator

from shared.campaign import system_now
from shared.config import Settings, settings_or_exit

CrashPoint = Literal["before_commit", "after_commit"]


class Clock:
    """Evaluation's time source: every service's (`system_now`, which honours
    SANWU_CLOCK_OFFSET_SECONDS) moved by `offset`. The rolling period moves with it; tests
    move it forward instead of sleeping."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return system_now() + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


class EvaluationSettings(Settings):
    # The service logs in as its own role when SANWU_DATABASE_URL names no user.
    database_user: str = "sanwu_evaluation"
    evaluation_host: str = "127.0.0.1"
    evaluation_port: int = 8002
    # The consumer group, under the topic prefix so that test runs never share one.
    evaluation_group: str = "evaluation"
    # group.instance.id: a restarted instance takes its partitions back without a rebalance.
    evaluation_instance_id: str | None = None
    evaluation_session_timeout_ms: int = 10_000
    # At most this many events a batch. A poll takes what has arrived, so batches are small
    # while events trickle in and grow with a backlog: a batch's cost that does not depend on
    # its size (every status and rising window of a county it touches) is then shared by more
    # events. A fetch brings up to `evaluation_fetch_bytes` of a partition (one county's).
    evaluation_batch_size: int = Field(10_000, ge=1, le=10_000)
    evaluation_fetch_bytes: int = Field(8 * 1024 * 1024, ge=1024 * 1024)
    evaluation_poll_ms: int = Field(200, ge=10)
    evaluation_run_consumer: bool = True
    # The rolling period ages at least hourly (and once at start-up).
    rolling_expiry_seconds: float = Field(3600.0, gt=0, le=3600)
    status_relay_enabled: bool = True
    status_relay_batch_size: int = 5000  # a batch of events can change as many
    status_relay_idle_poll_seconds: float = 1.0
    # PostgreSQL's work_mem and maintenance_work_mem in `sanwu evaluation rebuild`'s own
    # sessions: its index builds and aggregations sort every event of the topic.
    rebuild_sort_memory: str = Field("256MB", pattern=r"^[0-9]+(kB|MB|GB)$")
    # Processes that read the topic in a rebuild, each a share of its partitions (at most one
    # per partition): turning messages into rows takes a core per process.
    rebuild_readers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64)
    # PostgreSQL's parallel workers per index build in a rebuild (max_parallel_maintenance_
    # workers, never above the server's own). Unset: the server's, unless it runs on this
    # machine, where the warnings are found meanwhile: then the cores left after those two.
    rebuild_index_workers: int | None = Field(None, ge=0, le=64)
    # Fault injection for the crash tests: the consumer exits abruptly at that point of the
    # first batch that applies something.
    evaluation_crash_at: CrashPoint | None = None

    @property
    def group_id(self) -> str:
        return f"{self.topic_prefix}{self.evaluation_group}"

    @property
    def disputes_group_id(self) -> str:
        return f"{self.topic_prefix}{self.evaluation_group}-disputes"

    def clock(self) -> Clock:
        return Clock()

    @model_validator(mode="after")
    def _no_faults_in_production(self) -> "EvaluationSettings":
        if self.environment == "production" and self.evaluation_crash_at:
            raise ValueError("crash points are for tests, not production")
        return self


@lru_cache
def get_settings() -> EvaluationSettings:
    return settings_or_exit(EvaluationSettings)
