from functools import lru_cache

from pydantic import Field, field_validator

from services.webhooks.rules import AllowList
from shared.config import Settings, settings_or_exit


class WebhooksSettings(Settings):
    # The service logs in as its own role when SANWU_DATABASE_URL names no user.
    database_user: str = "sanwu_webhooks"
    webhooks_host: str = "127.0.0.1"
    webhooks_port: int = 8007
    webhooks_run_consumer: bool = True
    webhooks_run_dispatcher: bool = True
    webhooks_batch_size: int = Field(500, ge=1, le=5000)
    # Targets a subscription may name although their addresses are loopback, link-local,
    # private or otherwise not public, and which may use plain http: CIDRs (`10.1.0.0/16`)
    # or host:port pairs (`127.0.0.1:9000`, `hooks.internal:80`), comma-separated.
    webhooks_allowed_targets: str = ""
    # The Standard Webhooks retry schedule is multiplied by this (tests run it in
    # milliseconds with 0.0001).
    webhooks_retry_scale: float = Field(1.0, gt=0, le=1.0)
    webhooks_connect_timeout_seconds: float = Field(2.0, gt=0)
    webhooks_request_timeout_seconds: float = Field(5.0, gt=0)
    # Requests at once: to one subscription, and in all from one instance. A slow receiver
    # holds only its own slots.
    webhooks_subscription_concurrency: int = Field(4, ge=1, le=64)
    webhooks_concurrency: int = Field(64, ge=1, le=1024)
    # After a rotation, deliveries carry the old signatures beside the new ones this long.
    webhooks_rotation_overlap_seconds: float = Field(86_400.0, ge=0)
    # How often the dispatcher looks for due deliveries when nothing woke it.
    webhooks_idle_poll_seconds: float = Field(0.25, gt=0)
    # Delivered deliveries are kept this long (what a redelivered change is checked against),
    # dead ones until replayed or the subscription is removed.
    webhooks_retention_days: float = Field(7.0, gt=0)

    @field_validator("webhooks_allowed_targets")
    @classmethod
    def _parse_allowed(cls, value: str) -> str:
        AllowList.parse(value)  # raises ValueError naming the bad entry
        return value

    @property
    def allowed_targets(self) -> AllowList:
        return AllowList.parse(self.webhooks_allowed_targets)

    def consumer_group(self, name: str) -> str:
        """Groups are broker-wide: namespaced like the topics."""
        return f"{self.topic_prefix}webhooks-{name}"


@lru_cache
def get_settings() -> WebhooksSettings:
    return settings_or_exit(WebhooksSettings)
