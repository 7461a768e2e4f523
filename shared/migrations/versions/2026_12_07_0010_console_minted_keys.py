"""access: the keys the console mints for people an identity provider signed in, and their
revocation at sign-out, through two functions: the console's role inserts no key itself

Revision ID: 0010_shared
Revises: 0009_shared
Create Date: 2026-12-07
"""

from alembic import op

revision = "0010_shared"
down_revision = "0009_shared"
branch_labels = None
depends_on = None

# The longest a minted key may live: a console session ends sooner (docs/sign-in.md).
LONGEST = "24 hours"


def upgrade() -> None:
    # SECURITY DEFINER: runs as the migrator, which owns the tables; each function checks what
    # it is asked, so a console that misbehaves can mint no admin key, no key without a scope or
    # an end, and revoke no key it did not mint.
    op.execute(
        f"""
        CREATE FUNCTION access.mint_console_key(
            minted_key_id text, minted_secret_hash text, minted_role text,
            minted_scope_code text, minted_body text, minted_label text,
            minted_expires_at timestamptz, minted_actor text
        ) RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
        BEGIN
            IF minted_role NOT IN ('reader', 'bureau', 'desk', 'handler') THEN
                RAISE EXCEPTION 'the console mints no % key', minted_role
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF minted_scope_code IS NULL OR minted_expires_at IS NULL
               OR minted_expires_at > now() + interval '{LONGEST}'
               OR minted_actor NOT LIKE 'oidc:%' THEN
                RAISE EXCEPTION 'a minted key needs a scope, an end within {LONGEST}, an oidc actor'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            INSERT INTO access.api_keys
                (key_id, secret_hash, role, scope_code, body, label, expires_at)
            VALUES (minted_key_id, minted_secret_hash, minted_role, minted_scope_code,
                    minted_body, minted_label, minted_expires_at);
            INSERT INTO access.key_audit (action, key_id, role, scope_code, actor)
            VALUES ('created', minted_key_id, minted_role, minted_scope_code, minted_actor);
        END
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION access.revoke_console_key(revoked_key_id text, revoked_by text)
        RETURNS boolean
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
        DECLARE
            revoked record;
        BEGIN
            UPDATE access.api_keys SET revoked_at = now()
             WHERE key_id = revoked_key_id AND revoked_at IS NULL
               AND EXISTS (SELECT 1 FROM access.key_audit
                            WHERE key_id = revoked_key_id AND action = 'created'
                              AND actor LIKE 'oidc:%')
            RETURNING role, scope_code INTO revoked;
            IF NOT FOUND THEN
                RETURN false;
            END IF;
            INSERT INTO access.key_audit (action, key_id, role, scope_code, actor)
            VALUES ('revoked', revoked_key_id, revoked.role, revoked.scope_code, revoked_by);
            RETURN true;
        END
        $$
        """
    )
    op.execute(
        "REVOKE ALL ON FUNCTION access.mint_console_key(text, text, text, text, text, text, "
        "timestamptz, text), access.revoke_console_key(text, text) FROM PUBLIC"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION access.revoke_console_key(text, text)")
    op.execute(
        "DROP FUNCTION access.mint_console_key(text, text, text, text, text, text, "
        "timestamptz, text)"
    )
