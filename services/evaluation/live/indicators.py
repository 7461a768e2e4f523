"""Work-record indicators of a (unit, period) as stored and as published: the slots the unit's
own meetings fell in and the ratings of its subtree per source (`shared.indicators`)."""

from collections.abc import Mapping
from typing import Any

import orjson

from shared.events import Rating, RatingSource
from shared.indicators import RatingCounts, UnitIndicators
from shared.outbox import OutboxMessage
from shared.status import status_key

SCHEMA_VERSION = UnitIndicators.model_fields["schema_version"].default
SOURCES = tuple(s.value for s in RatingSource)
RATINGS = tuple(r.value for r in Rating)


def indicators_of(row: Mapping[str, Any]) -> UnitIndicators:
    return UnitIndicators(
        unit_code=str(row["unit_code"]),
        period=str(row["period"]),
        meetings_held=list(row["meetings_held"]),
        ratings={
            source: RatingCounts(**{r.value: row[f"{source}_{r}"] for r in Rating})
            for source in RatingSource
        },
        changed_at=row["changed_at"],
        version=row["version"],
    )


def indicator_message(row: Mapping[str, Any], correlation_id: str | None = None) -> OutboxMessage:
    """The `UnitIndicators` of a stored row as published, written straight from the row (a
    rebuild has the database write the same, `rebuild.repository.indicator_json`; a test holds
    it equal to the model's)."""
    headers = {"correlation_id": correlation_id} if correlation_id else {}
    value = {
        "schema_version": SCHEMA_VERSION,
        "unit_code": row["unit_code"],
        "period": row["period"],
        "meetings_held": row["meetings_held"],
        "ratings": {
            source: {rating: row[f"{source}_{rating}"] for rating in RATINGS} for source in SOURCES
        },
        "changed_at": row["changed_at"],
        "version": row["version"],
    }
    return OutboxMessage(
        key=status_key(str(row["unit_code"]), str(row["period"])),
        value=orjson.dumps(value),
        headers=headers,
    )
