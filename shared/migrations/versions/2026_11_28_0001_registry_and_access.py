"""registry (units, meta) and access (api keys)

Revision ID: 0001_shared
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_shared"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS registry")
    op.execute("CREATE SCHEMA IF NOT EXISTS access")
    op.create_table(
        "units",
        sa.Column("code", sa.CHAR(12), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("parent_code", sa.CHAR(12), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "level IN ('province', 'city', 'county', 'township', 'village')", name="level"
        ),
        sa.CheckConstraint("code ~ '^[0-9]{12}$'", name="code_digits"),
        schema="registry",
    )
    op.create_index("ix_units_parent_code", "units", ["parent_code"], schema="registry")
    op.create_table(
        "meta",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("loaded_at", sa.DateTime(timezone=True)),
        schema="registry",
    )
    op.execute("INSERT INTO registry.meta (id, version) VALUES (1, 0)")
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(16), primary_key=True),
        sa.Column("secret_hash", sa.CHAR(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scope_code", sa.CHAR(12), nullable=True),
        sa.Column("label", sa.Text, nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('desk', 'reader', 'admin')", name="role"),
        schema="access",
    )


def downgrade() -> None:
    op.drop_table("api_keys", schema="access")
    op.drop_table("meta", schema="registry")
    op.drop_table("units", schema="registry")
