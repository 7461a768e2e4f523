"""access: announce key changes, so processes that keep keys in memory drop them

Revision ID: 0002_shared
Revises: 0001_shared
Create Date: 2026-11-28
"""

from alembic import op

revision = "0002_shared"
down_revision = "0001_shared"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Inserts need no announcement: a key nobody has read yet is in no process's memory.
    op.execute(
        """
        CREATE FUNCTION access.announce_key_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('access_keys', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER api_keys_changed
        AFTER UPDATE OR DELETE OR TRUNCATE ON access.api_keys
        FOR EACH STATEMENT EXECUTE FUNCTION access.announce_key_change()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER api_keys_changed ON access.api_keys")
    op.execute("DROP FUNCTION access.announce_key_change()")
