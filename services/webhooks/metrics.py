from prometheus_client import Counter, Histogram

CHANGES = Counter("sanwu_webhooks_changes_total", "Changes read from the topics")
MADE = Counter("sanwu_webhooks_deliveries_made_total", "Deliveries made from changes")
DEAD_LETTERS = Counter(
    "sanwu_webhooks_dead_letters_total", "Malformed messages sent to the dead-letter topic"
)
ATTEMPTS = Counter(
    "sanwu_webhooks_attempts_total",
    "Delivery attempts by outcome (delivered, retried, dead, gone, refused)",
    ["outcome"],
)
LAG = Histogram(
    "sanwu_webhooks_delivery_lag_seconds",
    "From a change to its delivery's acknowledgement, deliveries that succeeded",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600, 36_000, 172_800),
)
