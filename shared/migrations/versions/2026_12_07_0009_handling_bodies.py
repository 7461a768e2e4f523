"""registry and access: the handling bodies of units (reference data, `sanwu bodies load`), and
the handler role, whose key names the body it acts for

Revision ID: 0009_shared
Revises: 0008_shared
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_shared"
down_revision = "0008_shared"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bodies",
        sa.Column("unit_code", sa.CHAR(12), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("unit_code", "body", name="pk_bodies"),
        sa.ForeignKeyConstraint(["unit_code"], ["registry.units.code"], name="fk_bodies_unit"),
        schema="registry",
    )
    op.add_column("api_keys", sa.Column("body", sa.Text), schema="access")
    op.drop_constraint("role", "api_keys", schema="access", type_="check")
    op.create_check_constraint(
        "role",
        "api_keys",
        "role IN ('desk', 'reader', 'bureau', 'handler', 'admin')",
        schema="access",
    )
    op.create_check_constraint(
        "handler_body", "api_keys", "(role = 'handler') = (body IS NOT NULL)", schema="access"
    )


def downgrade() -> None:
    op.drop_constraint("handler_body", "api_keys", schema="access", type_="check")
    op.execute("DELETE FROM access.api_keys WHERE role = 'handler'")
    op.drop_constraint("role", "api_keys", schema="access", type_="check")
    op.create_check_constraint(
        "role", "api_keys", "role IN ('desk', 'reader', 'bureau', 'admin')", schema="access"
    )
    op.drop_column("api_keys", "body", schema="access")
    op.drop_table("bodies", schema="registry")
