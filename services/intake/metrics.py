from prometheus_client import Counter

from shared.errors import DomainError

accepted = Counter("sanwu_intake_events_accepted_total", "Events newly accepted", ["type"])
duplicates = Counter("sanwu_intake_events_duplicate_total", "Repeats of accepted events", ["type"])
rejected = Counter("sanwu_intake_events_rejected_total", "Events refused", ["reason"])


def count_outcome(event_type: str, outcome: object) -> None:
    if isinstance(outcome, DomainError):
        rejected.labels(outcome.slug).inc()
    elif getattr(outcome, "duplicate", False):
        duplicates.labels(event_type).inc()
    else:
        accepted.labels(event_type).inc()
