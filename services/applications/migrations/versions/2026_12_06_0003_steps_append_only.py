"""applications: the steps are history, refused UPDATE, DELETE and TRUNCATE in the database

Revision ID: 0003_applications
Revises: 0002_applications
Create Date: 2026-12-06
"""

from shared.append_only import drop_append_only, make_append_only

revision = "0003_applications"
down_revision = "0002_applications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    make_append_only("applications", "step")


def downgrade() -> None:
    drop_append_only("applications", "step")
