"""The applications service's own schema: its view of the unit statuses (written only by its
status consumer and its rebuild) and of the work-record indicators, the applications with their
units, the history of every step (kept forever) and the outbox that publishes each step to the
applications topic.

Each table is a SQLModel model, whose rows the repository package reads as objects; the
module-level tables (`unit_status`, `application`, ...) are the same tables, for statements on
their columns. The migrations create them (columns and types here as there)."""

from datetime import date, datetime
from typing import Any, cast
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlmodel import Field, SQLModel

from shared.outbox import outbox_table

SCHEMA = "applications"
APPLICATION_ID = f"{SCHEMA}.application.application_id"
CODE = sa.CHAR(12)
MOMENT = sa.DateTime(timezone=True)


def column(kind: Any, *options: Any, nullable: bool = False, **named: Any) -> Any:
    """A field on a column of exactly this type; a nullable one defaults to None."""
    return Field(
        default=None if nullable else ...,
        sa_column=sa.Column(kind, *options, nullable=nullable, **named),
    )


class UnitStatusRow(SQLModel, table=True):
    """The latest status per unit and period, as the status topic says. No row: three-no, no
    events. `counts` and `people` are the status's figures per criterion ({} until a status
    arrives)."""

    __tablename__ = "unit_status"
    __table_args__ = {"schema": SCHEMA}

    unit_code: str = column(CODE, primary_key=True)
    period: str = column(sa.Text, primary_key=True)
    three_no: bool = column(sa.Boolean)
    counting_event_ids: list[str] = column(ARRAY(sa.Text))
    version: int = column(sa.Integer)
    changed_at: datetime = column(MOMENT)
    counts: dict[str, int] = column(JSONB, server_default="{}")
    people: dict[str, int] = column(JSONB, server_default="{}")


class UnitIndicatorsRow(SQLModel, table=True):
    """The latest indicators per unit and period; no row: nothing known yet (the evidence says
    null). `ratings`: the counts of each source."""

    __tablename__ = "unit_indicators"
    __table_args__ = {"schema": SCHEMA}

    unit_code: str = column(CODE, primary_key=True)
    period: str = column(sa.Text, primary_key=True)
    meetings_held: list[date] = column(ARRAY(sa.Date))
    ratings: dict[str, dict[str, int]] = column(JSONB)
    version: int = column(sa.Integer)
    changed_at: datetime = column(MOMENT)


class ApplicationRow(SQLModel, table=True):
    __tablename__ = "application"
    __table_args__ = {"schema": SCHEMA}

    application_id: UUID = column(PG_UUID(as_uuid=True), primary_key=True)
    county_code: str = column(CODE)
    period: str = column(sa.Text)
    state: str = column(sa.Text)
    version: int = column(sa.Integer)
    created_at: datetime = column(MOMENT)
    updated_at: datetime = column(MOMENT)


class ApplicationUnitRow(SQLModel, table=True):
    __tablename__ = "application_unit"
    __table_args__ = {"schema": SCHEMA}

    application_id: UUID = column(
        PG_UUID(as_uuid=True), sa.ForeignKey(APPLICATION_ID), primary_key=True
    )
    unit_code: str = column(CODE, primary_key=True)
    period: str = column(sa.Text)
    self_evaluation: str = column(sa.Text)
    rectifications: list[str] = column(JSONB)
    state: str = column(sa.Text)
    evidence: dict[str, Any] | None = column(JSONB, nullable=True)
    decision_reason: str | None = column(sa.Text, nullable=True)
    flag_since: datetime | None = column(MOMENT, nullable=True)
    flag_event_ids: list[str] | None = column(ARRAY(sa.Text), nullable=True)


class StepRow(SQLModel, table=True):
    __tablename__ = "step"
    __table_args__ = {"schema": SCHEMA}

    step_id: int = column(sa.BigInteger, sa.Identity(), primary_key=True)
    application_id: UUID = column(PG_UUID(as_uuid=True), sa.ForeignKey(APPLICATION_ID))
    unit_code: str | None = column(CODE, nullable=True)
    action: str = column(sa.Text)
    key_id: str | None = column(sa.Text, nullable=True)
    role: str | None = column(sa.Text, nullable=True)
    scope_code: str | None = column(CODE, nullable=True)
    reason: str | None = column(sa.Text, nullable=True)
    detail: dict[str, Any] = column(JSONB, server_default="{}")
    at: datetime = column(MOMENT)


def table_of(model: type[SQLModel]) -> sa.Table:
    return cast(sa.Table, model.__table__)  # type: ignore[attr-defined]


unit_status = table_of(UnitStatusRow)
unit_indicators = table_of(UnitIndicatorsRow)
application = table_of(ApplicationRow)
application_unit = table_of(ApplicationUnitRow)
step = table_of(StepRow)
outbox = outbox_table(SCHEMA, SQLModel.metadata)
