from prometheus_client import Counter, Gauge, Histogram

events_applied = Counter(
    "sanwu_evaluation_events_applied_total",
    "Events and corrections applied for the first time",
    ["type"],
)
events_redelivered = Counter(
    "sanwu_evaluation_events_redelivered_total", "Events seen again and left as they were"
)
dead_lettered = Counter(
    "sanwu_evaluation_dead_lettered_total", "Messages sent to the dead-letter topic", ["reason"]
)
status_changes = Counter("sanwu_evaluation_status_changes_total", "Status changes published")
indicator_changes = Counter(
    "sanwu_evaluation_indicator_changes_total", "Work-record indicator changes published"
)
rolling_expired = Counter(
    "sanwu_evaluation_rolling_expired_total", "Rolling statuses changed by the window moving on"
)
registry_moves_followed = Counter(
    "sanwu_evaluation_registry_moves_followed_total",
    "Events re-evaluated because the registry moved their unit or one of its ancestors",
)
batch_seconds = Histogram(
    "sanwu_evaluation_batch_seconds",
    "Time to apply one batch: its transaction and the offset commit",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
batch_failures = Counter(
    "sanwu_evaluation_batch_failures_total", "Batches that failed and were retried"
)
consumer_lag = Gauge(
    "sanwu_evaluation_consumer_lag",
    "Messages not yet applied on the partitions this instance owns",
    ["partition"],
)
