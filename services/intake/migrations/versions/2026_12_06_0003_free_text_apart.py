"""intake: free text apart from the journal, and the journal append-only

What people wrote (the free-text fields) moves to `intake.free_text`, one row per event, which
retention deletes when the time comes; the journal row keeps the rest of the payload and the
content hash of the whole, and from now on refuses UPDATE, DELETE and TRUNCATE.

Revision ID: 0003_intake
Revises: 0002_intake
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.append_only import drop_append_only, make_append_only

revision = "0003_intake"
down_revision = "0002_intake"
branch_labels = None
depends_on = None

# shared.events.FREE_TEXT_FIELDS when this migration was written.
FREE_TEXT = "ARRAY['category', 'platform', 'reason', 'summary']"


def upgrade() -> None:
    op.create_table(
        "free_text",
        sa.Column(
            "event_id",
            UUID(as_uuid=True),
            sa.ForeignKey("intake.journal.event_id"),
            primary_key=True,
        ),
        sa.Column("fields", JSONB, nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        schema="intake",
    )
    op.create_index("ix_free_text_accepted_at", "free_text", ["accepted_at"], schema="intake")
    op.execute(
        f"""
        INSERT INTO intake.free_text (event_id, fields, accepted_at)
        SELECT event_id, payload - (
                   SELECT coalesce(array_agg(key), '{{}}') FROM jsonb_object_keys(payload) AS key
                    WHERE key <> ALL ({FREE_TEXT})
               ), accepted_at
          FROM intake.journal
         WHERE payload ?| {FREE_TEXT}
        """
    )
    op.execute(
        f"UPDATE intake.journal SET payload = payload - {FREE_TEXT} WHERE payload ?| {FREE_TEXT}"
    )
    make_append_only("intake", "journal")


def downgrade() -> None:
    drop_append_only("intake", "journal")
    op.execute(
        "UPDATE intake.journal AS j SET payload = j.payload || t.fields "
        "FROM intake.free_text AS t WHERE t.event_id = j.event_id"
    )
    op.drop_table("free_text", schema="intake")
