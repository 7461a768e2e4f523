"""access: an audit of key creations, revocations and expiries; new keys announced too

Revision ID: 0003_shared
Revises: 0002_shared
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_shared"
down_revision = "0002_shared"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_audit",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scope_code", sa.CHAR(12), nullable=True),
        sa.Column("actor", sa.Text, nullable=False),
        sa.CheckConstraint("action IN ('created', 'revoked', 'expired')", name="action"),
        schema="access",
    )
    op.create_index("ix_key_audit_key_id", "key_audit", ["key_id"], schema="access")
    # An expiry is recorded once, whichever process finds it first.
    op.create_index(
        "uq_key_audit_expired",
        "key_audit",
        ["key_id"],
        unique=True,
        schema="access",
        postgresql_where=sa.text("action = 'expired'"),
    )
    # Keys made before the audit existed: what the key table still tells, by an unknown actor.
    op.execute(
        """
        INSERT INTO access.key_audit (at, action, key_id, role, scope_code, actor)
        SELECT created_at, 'created', key_id, role, scope_code, 'unrecorded'
          FROM access.api_keys
        UNION ALL
        SELECT revoked_at, 'revoked', key_id, role, scope_code, 'unrecorded'
          FROM access.api_keys WHERE revoked_at IS NOT NULL
        """
    )
    # Processes remember unknown key ids for a few seconds; a new key must end that at once.
    op.execute("DROP TRIGGER api_keys_changed ON access.api_keys")
    op.execute(
        """
        CREATE TRIGGER api_keys_changed
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON access.api_keys
        FOR EACH STATEMENT EXECUTE FUNCTION access.announce_key_change()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER api_keys_changed ON access.api_keys")
    op.execute(
        """
        CREATE TRIGGER api_keys_changed
        AFTER UPDATE OR DELETE OR TRUNCATE ON access.api_keys
        FOR EACH STATEMENT EXECUTE FUNCTION access.announce_key_change()
        """
    )
    op.drop_table("key_audit", schema="access")
