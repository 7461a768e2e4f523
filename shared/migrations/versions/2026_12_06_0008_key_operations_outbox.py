"""access: every key audit row also waits in an outbox until the audit log has appended it

Revision ID: 0008_shared
Revises: 0007_shared
Create Date: 2026-12-06

The audit service (services/audit) appends each key operation to its Merkle log exactly once:
it deletes the row from this outbox in the transaction that appends the leaf. The trigger
copies the row as inserted, so the audit service reads nothing of the key audit itself; it
runs with its owner's rights (SECURITY DEFINER), so the roles that add to the key audit need
no right on the outbox, and fires also for a session that turned triggers off
(ENABLE ALWAYS). Rows already in the key audit are queued here once.
"""

from alembic import op

revision = "0008_shared"
down_revision = "0007_shared"
branch_labels = None
depends_on = None

# The channel the audit service listens on to drain the outbox at once.
CHANNEL = "audit_key_operations"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE access.key_operations_outbox (
            audit_id bigint PRIMARY KEY,
            at timestamptz NOT NULL,
            action varchar(16) NOT NULL,
            key_id varchar(16) NOT NULL,
            role varchar(16) NOT NULL,
            scope_code char(12),
            actor text NOT NULL
        )
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION access.queue_key_operation() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
        BEGIN
            INSERT INTO access.key_operations_outbox
                (audit_id, at, action, key_id, role, scope_code, actor)
            VALUES (NEW.id, NEW.at, NEW.action, NEW.key_id, NEW.role, NEW.scope_code, NEW.actor);
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION access.queue_key_operation() FROM PUBLIC")
    op.execute(
        "CREATE TRIGGER key_audit_queued AFTER INSERT ON access.key_audit "
        "FOR EACH ROW EXECUTE FUNCTION access.queue_key_operation()"
    )
    op.execute("ALTER TABLE access.key_audit ENABLE ALWAYS TRIGGER key_audit_queued")
    op.execute(
        """
        INSERT INTO access.key_operations_outbox
            (audit_id, at, action, key_id, role, scope_code, actor)
        SELECT id, at, action, key_id, role, scope_code, actor FROM access.key_audit
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER key_audit_queued ON access.key_audit")
    op.execute("DROP FUNCTION access.queue_key_operation()")
    op.execute("DROP TABLE access.key_operations_outbox")
