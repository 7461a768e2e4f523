from prometheus_client import Counter, Gauge

from shared.errors import DomainError

accepted = Counter("sanwu_intake_events_accepted_total", "Events newly accepted", ["type"])
duplicates = Counter("sanwu_intake_events_duplicate_total", "Repeats of accepted events", ["type"])
rejected = Counter("sanwu_intake_events_rejected_total", "Events refused", ["reason"])
published = Counter("sanwu_intake_relay_published_total", "Outbox messages published to Kafka")
relay_errors = Counter("sanwu_intake_relay_errors_total", "Relay rounds that failed and will retry")
outbox_pending = Gauge("sanwu_intake_outbox_pending", "Outbox messages not yet published")


def count_outcome(event_type: str, outcome: object) -> None:
    if isinstance(outcome, DomainError):
        rejected.labels(outcome.slug).inc()
    elif getattr(outcome, "duplicate", False):
        duplicates.labels(event_type).inc()
    else:
        accepted.labels(event_type).inc()
