from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from services.webhooks.rules import Kind

NO_NUL = r"^[^\x00]*$"
SECRET = Field(
    None,
    pattern=r"^whsec_[A-Za-z0-9+/=]{32,90}$",
    description="A Standard Webhooks secret (`whsec_` and the base64 of 24 to 64 bytes) to "
    "sign `v1` with; omitted: one is made and returned once",
)


class SubscriptionIn(BaseModel):
    model_config = {
        "extra": "forbid",
        "json_schema_extra": {
            "examples": [
                {
                    "url": "https://hooks.city.example.gov.cn/sanwu",
                    "kinds": ["status_changes", "warnings"],
                }
            ]
        },
    }

    url: str = Field(
        min_length=8,
        max_length=2000,
        pattern=NO_NUL,
        description="Where deliveries are posted: https, to a public address (or a target "
        "SANWU_WEBHOOKS_ALLOWED_TARGETS names)",
    )
    kinds: list[Kind] = Field(min_length=1, max_length=len(Kind))
    secret: str | None = SECRET


class RotateIn(BaseModel):
    model_config = {"extra": "forbid"}

    secret: str | None = SECRET


class SubscriptionOut(BaseModel):
    subscription_id: UUID
    url: str
    kinds: list[Kind]
    scope_code: str | None = Field(description="The units heard of: this unit and below")
    state: Literal["active", "disabled"]
    disabled_reason: str | None
    public_key: str = Field(description="`whpk_`: checks the `v1a` (Ed25519) signatures")
    previous_public_key: str | None = Field(
        description="The key replaced by the last rotation, in force until `previous_until`"
    )
    previous_until: datetime | None
    deliveries: dict[str, int] = Field(
        description="Deliveries by state (`pending`, `delivered`, `dead`); on a read alone"
    )
    created_at: datetime
    changed_at: datetime


class IssuedOut(SubscriptionOut):
    secret: str = Field(description="The `whsec_` secret of `v1`: shown here only, never again")


class SubscriptionListOut(BaseModel):
    items: list[SubscriptionOut]


class DeadLetterOut(BaseModel):
    delivery_id: int
    webhook_id: str = Field(description="The `webhook-id` the delivery was sent with")
    unit_code: str
    payload: dict[str, object]
    attempts: int
    last_status: int | None
    last_error: str | None
    dead_at: datetime | None


class DeadLetterPageOut(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page")


class ReplayIn(BaseModel):
    model_config = {"extra": "forbid"}

    delivery_ids: list[int] | None = Field(
        None, max_length=1000, description="The dead letters to replay; omitted: every one"
    )


class ReplayOut(BaseModel):
    replayed: int
