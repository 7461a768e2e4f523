from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

SCHEMA = "registry"


class Unit(SQLModel, table=True):
    __tablename__ = "units"
    __table_args__ = {"schema": SCHEMA}

    code: str = Field(sa_column=sa.Column(sa.CHAR(12), primary_key=True))
    name: str
    level: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    parent_code: str | None = Field(default=None, sa_column=sa.Column(sa.CHAR(12), index=True))
    updated_at: datetime = Field(
        sa_column=sa.Column(
            sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        )
    )


class RegistryMeta(SQLModel, table=True):
    """One row: a version that grows with every load that changed something."""

    __tablename__ = "meta"
    __table_args__ = {"schema": SCHEMA}

    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0, sa_column=sa.Column(sa.BigInteger, nullable=False))
    loaded_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True))
    )
