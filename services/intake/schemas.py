from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SkipValidation

from services.intake.config import DEFAULT_MAX_BATCH_EVENTS
from shared.events import Event


class ReceiptOut(BaseModel):
    event_id: UUID
    accepted_at: datetime
    duplicate: bool


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Documented as events, validated one by one by the service: a bad item is rejected
    # alone instead of failing the whole batch.
    # The limit is SANWU_MAX_BATCH_EVENTS, checked by the service; the schema shows the default.
    events: list[SkipValidation[Event]] = Field(
        json_schema_extra={"maxItems": DEFAULT_MAX_BATCH_EVENTS},
        description=f"Up to {DEFAULT_MAX_BATCH_EVENTS} events (by default), each as for "
        "POST /v1/events; a bad one does not stop the others.",
    )


class BatchItemOut(BaseModel):
    event_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    error: dict[str, Any] | None = Field(None, description="problem+json body of the rejection")


class BatchOut(BaseModel):
    results: list[BatchItemOut]


class StoredEventOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    event_id: UUID
    type: str
    unit_code: str
    occurred_at: datetime
    accepted_at: datetime
    key_id: str = Field(description="The key that posted the event.")
    corrections: list[dict[str, Any]] = Field(
        description="Voids and re-attributions that target this event, oldest first."
    )
