"""Intake's own schema: the accepted-event journal, the free text kept apart from it until
retention removes it, and the outbox the relay drains."""

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from shared.outbox import outbox_table

SCHEMA = "intake"


class JournalEntry(SQLModel, table=True):
    """One accepted event: what was sent (petitioner_ref already hashed), by which key, when."""

    __tablename__ = "journal"
    __table_args__ = {"schema": SCHEMA}

    event_id: UUID = Field(primary_key=True)
    type: str
    unit_code: str = Field(sa_column=sa.Column(sa.CHAR(12), nullable=False))
    county_code: str = Field(sa_column=sa.Column(sa.CHAR(12), nullable=False))
    target_event_id: UUID | None = Field(default=None, index=True)
    occurred_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    payload: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))
    content_hash: str = Field(sa_column=sa.Column(sa.CHAR(64), nullable=False))
    key_id: str
    correlation_id: str | None = None
    accepted_at: datetime = Field(
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        )
    )


class FreeText(SQLModel, table=True):
    """What people wrote in an event (`FREE_TEXT_FIELDS`), kept apart from its journal row so
    that retention deletes it while the journal stays as it was accepted."""

    __tablename__ = "free_text"
    __table_args__ = {"schema": SCHEMA}

    event_id: UUID = Field(primary_key=True, foreign_key="intake.journal.event_id")
    fields: dict[str, Any] = Field(sa_column=sa.Column(JSONB, nullable=False))
    accepted_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


outbox = outbox_table(SCHEMA, SQLModel.metadata)
