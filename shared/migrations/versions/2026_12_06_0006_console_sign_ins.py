"""access: the key audit records console sign-ins, refused sign-ins and sign-outs

Revision ID: 0006_shared
Revises: 0005_shared
Create Date: 2026-12-06
"""

from alembic import op

revision = "0006_shared"
down_revision = "0005_shared"
branch_labels = None
depends_on = None

KEY_ACTIONS = "'created', 'revoked', 'expired'"
CONSOLE_ACTIONS = "'signed_in', 'sign_in_refused', 'signed_out'"


def upgrade() -> None:
    op.drop_constraint("action", "key_audit", schema="access", type_="check")
    op.create_check_constraint(
        "action", "key_audit", f"action IN ({KEY_ACTIONS}, {CONSOLE_ACTIONS})", schema="access"
    )


def downgrade() -> None:
    op.execute(f"DELETE FROM access.key_audit WHERE action IN ({CONSOLE_ACTIONS})")
    op.drop_constraint("action", "key_audit", schema="access", type_="check")
    op.create_check_constraint("action", "key_audit", f"action IN ({KEY_ACTIONS})", schema="access")
