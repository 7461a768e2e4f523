"""access: the bureau role (a petition bureau, 信访局)

Revision ID: 0005_shared
Revises: 0004_shared
Create Date: 2026-12-01
"""

from alembic import op

revision = "0005_shared"
down_revision = "0004_shared"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("role", "api_keys", schema="access", type_="check")
    op.create_check_constraint(
        "role", "api_keys", "role IN ('desk', 'reader', 'bureau', 'admin')", schema="access"
    )


def downgrade() -> None:
    op.drop_constraint("role", "api_keys", schema="access", type_="check")
    op.create_check_constraint(
        "role", "api_keys", "role IN ('desk', 'reader', 'admin')", schema="access"
    )
