from collections import Counter as CountOf
from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from shared.errors import DomainError

accepted = Counter("sanwu_intake_events_accepted_total", "Events newly accepted", ["type"])
duplicates = Counter("sanwu_intake_events_duplicate_total", "Repeats of accepted events", ["type"])
rejected = Counter("sanwu_intake_events_rejected_total", "Events refused", ["reason"])
gathered = Histogram(
    "sanwu_intake_gathered_events",
    "Single events journalled together by one statement",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000),
)


def count_outcomes(outcomes: Iterable[tuple[str, object]]) -> None:
    """Count (event type, receipt or error) pairs: one increment per metric and label, as a
    batch would otherwise take a label lookup per event."""
    counts: CountOf[tuple[Counter, str]] = CountOf()
    for event_type, outcome in outcomes:
        if isinstance(outcome, DomainError):
            counts[rejected, outcome.slug] += 1
        elif getattr(outcome, "duplicate", False):
            counts[duplicates, event_type] += 1
        else:
            counts[accepted, event_type] += 1
    for (metric, label), count in counts.items():
        metric.labels(label).inc(count)
