from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

SCHEMA = "access"


class Role(StrEnum):
    desk = "desk"
    reader = "reader"
    # A petition bureau (信访局): reads like a reader, and acts on applications for the title
    # as its scope's level allows (county applies, city reviews, province awards).
    bureau = "bureau"
    # A handling body of a unit (民政, 司法 …): acts on the cases routed to that body.
    handler = "handler"
    admin = "admin"


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    __table_args__ = {"schema": SCHEMA}

    key_id: str = Field(sa_column=sa.Column(sa.String(16), primary_key=True))
    secret_hash: str = Field(sa_column=sa.Column(sa.CHAR(64), nullable=False))
    role: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    scope_code: str | None = Field(default=None, sa_column=sa.Column(sa.CHAR(12)))
    # A handler's body of its scope unit (registry.bodies); only handlers have one.
    body: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    label: str | None = None
    created_at: datetime = Field(
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        )
    )
    expires_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )
    revoked_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )


class KeyAction(StrEnum):
    created = "created"
    revoked = "revoked"
    expired = "expired"
    # The key's use in the console, by `console:<client address>`.
    signed_in = "signed_in"
    sign_in_refused = "sign_in_refused"
    signed_out = "signed_out"


class KeyAuditEntry(SQLModel, table=True):
    """Who created or revoked a key, when a key was found expired, and each sign-in to the
    console with it (refused ones too) and sign-out: one row each."""

    __tablename__ = "key_audit"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger, sa.Identity(), primary_key=True)
    )
    at: datetime = Field(
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        )
    )
    action: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    key_id: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    role: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    scope_code: str | None = Field(default=None, sa_column=sa.Column(sa.CHAR(12)))
    # key:<id> (an admin key, through an API), user:<name> (the command line's --actor, or
    # its operating-system account), system (an expiry) or console:<client address>
    actor: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
