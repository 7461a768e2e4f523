from functools import lru_cache

from pydantic import Field

from shared.config import Settings, settings_or_exit

DEFAULT_MAX_BATCH_EVENTS = 1000
DEFAULT_GATHERED_STATEMENTS = 1


class IntakeSettings(Settings):
    # The service logs in as its own role when SANWU_DATABASE_URL names no user.
    database_user: str = "sanwu_intake"
    intake_host: str = "127.0.0.1"
    intake_port: int = 8001
    intake_run_relay: bool = True
    # Reads the ratings of cases from the cases topic, each a satisfaction_rating work record.
    intake_run_case_ratings: bool = True
    # Messages a relay round publishes: rounds wait for the event loop between their steps,
    # which the requests keep busy while a backlog is posted, so a round takes many.
    relay_batch_size: int = 10_000
    # The relay in the intake process is woken by each accepted event; this bounds how long
    # a relay running on its own (`sanwu intake relay`) leaves a committed event unpublished.
    relay_idle_poll_seconds: float = 0.1
    max_batch_events: int = Field(DEFAULT_MAX_BATCH_EVENTS, ge=1)
    # Single events posted at the same moment share a statement and a commit; this many such
    # statements run at once (each takes a pooled connection while it runs). One gave the
    # most events per second here: the events that arrive during a statement make the next.
    intake_gathered_statements: int = Field(DEFAULT_GATHERED_STATEMENTS, ge=1)
    future_tolerance_seconds: int = 300
    # What people wrote (summary, reason, category, platform) is removed from the journal this
    # long after the event was accepted: three years, the span of the yearly campaign periods a
    # county is judged on and of the review of its application after them. The facts, the
    # content hash and who posted it stay.
    free_text_retention_days: int = Field(1095, ge=1)
    # The purge scans the journal for rows that still hold free text: at start, then daily.
    free_text_purge_interval_seconds: float = Field(86400.0, gt=0)


@lru_cache
def get_settings() -> IntakeSettings:
    return settings_or_exit(IntakeSettings)
