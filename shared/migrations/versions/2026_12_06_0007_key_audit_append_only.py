"""access: the key audit is history, refused UPDATE, DELETE and TRUNCATE in the database

Revision ID: 0007_shared
Revises: 0006_shared
Create Date: 2026-12-06
"""

from shared.append_only import drop_append_only, make_append_only

revision = "0007_shared"
down_revision = "0006_shared"
branch_labels = None
depends_on = None


def upgrade() -> None:
    make_append_only("access", "key_audit")


def downgrade() -> None:
    drop_append_only("access", "key_audit")
