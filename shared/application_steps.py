"""A step of an application for the three-no title, as published on the applications topic.

Applications records every step (who, what, when and why) in its history and publishes it,
keyed by the county that applies, through its outbox; the feed serves the same steps by
`step_id`. No service reads the topic yet: `shared.messages.parse_application_step` is the
parser the first consumer uses.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class StepAction(StrEnum):
    created = "created"
    submitted = "submitted"
    approved = "approved"
    returned = "returned"
    awarded = "awarded"
    rejected = "rejected"
    flagged = "flagged"
    flag_cleared = "flag_cleared"
    revoked = "revoked"


class ApplicationStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = 1
    step_id: int
    application_id: UUID
    county_code: str
    period: str
    unit_code: str | None = Field(description="the unit the step is about, if it is about one")
    action: StepAction
    key_id: str | None = Field(description="who: null for the service's own flag steps")
    role: str | None
    scope_code: str | None
    reason: str | None
    detail: dict[str, Any]
    at: datetime

    @property
    def key(self) -> bytes:
        return self.county_code.encode()
