from prometheus_client import Counter, Gauge

published_total = Counter("sanwu_outbox_published_total", "Outbox messages published", ["outbox"])
relay_errors_total = Counter("sanwu_outbox_relay_errors_total", "Relay rounds failed", ["outbox"])
pending_gauge = Gauge("sanwu_outbox_pending", "Outbox messages not yet published", ["outbox"])
