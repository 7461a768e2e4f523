"""Work-record indicators of a (unit, period) as stored and as published: the slots the unit's
own meetings fell in and the ratings of its subtree per source (`shared.indicators`)."""

from collections.abc import Mapping
from typing import Any

import orjson

from services.evaluation.models import RATING_COLUMNS
from shared.events import Rating, RatingSource
from shared.indicators import RatingCounts, UnitIndicators
from shared.outbox import OutboxMessage
from shared.status import status_key

SCHEMA_VERSION = UnitIndicators.model_fields["schema_version"].default
SOURCES = tuple(s.value for s in RatingSource)
RATINGS = tuple(r.value for r in Rating)

INDICATOR_CONTENT = ("meetings_held", *RATING_COLUMNS)
INDICATOR_COLUMNS = ("unit_code", "period", *INDICATOR_CONTENT, "changed_at", "version")


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
    rebuild publishes one per (unit, period); a test holds it equal to the model's)."""
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


def indicator_json(alias: str) -> str:
    """The SQL of `indicator_message`'s value from an `indicators` row `alias`, for a rebuild
    to publish every changed row in one statement (a test reads both back as the model)."""
    ratings = ", ".join(
        f"'{source}', json_build_object("
        + ", ".join(f"'{rating}', {alias}.{source}_{rating}" for rating in RATINGS)
        + ")"
        for source in SOURCES
    )
    return (
        f"json_build_object('schema_version', {SCHEMA_VERSION}, "
        f"'unit_code', {alias}.unit_code, 'period', {alias}.period, "
        f"'meetings_held', {alias}.meetings_held, 'ratings', json_build_object({ratings}), "
        f"'changed_at', {alias}.changed_at, 'version', {alias}.version)"
    )
