"""webhooks: subscriptions and their deliveries

Revision ID: 0001_webhooks
Revises:
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_webhooks"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "webhooks"
MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subscription",
        sa.Column("subscription_id", sa.Uuid, nullable=False),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("scope_code", sa.Text),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("kinds", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("secret", sa.LargeBinary, nullable=False),
        sa.Column("signing_seed", sa.LargeBinary, nullable=False),
        sa.Column("previous_secret", sa.LargeBinary),
        sa.Column("previous_signing_seed", sa.LargeBinary),
        sa.Column("previous_until", MOMENT),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("changed_at", MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", name="pk_subscription"),
        sa.CheckConstraint("state IN ('active', 'disabled')", name="ck_subscription_state"),
        sa.CheckConstraint("cardinality(kinds) > 0", name="ck_subscription_kinds"),
        schema=SCHEMA,
    )
    # The subscriptions a change reaches: by kind, then scope.
    op.create_index("ix_subscription_scope", "subscription", ["scope_code"], schema=SCHEMA)
    op.create_table(
        "delivery",
        sa.Column("delivery_id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("subscription_id", sa.Uuid, nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("unit_code", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("happened_at", MOMENT, nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("due_at", MOMENT, nullable=False),
        sa.Column("leased_until", MOMENT),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("finished_at", MOMENT),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_delivery"),
        # A change read again (a redelivered batch) makes no second delivery.
        sa.UniqueConstraint("subscription_id", "message_id", name="uq_delivery_message"),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            [f"{SCHEMA}.subscription.subscription_id"],
            name="fk_delivery_subscription",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'dead')", name="ck_delivery_state"),
        schema=SCHEMA,
    )
    # The head of each subscription's unit: the oldest pending delivery.
    op.create_index(
        "ix_delivery_pending",
        "delivery",
        ["subscription_id", "unit_code", "delivery_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_delivery_dead",
        "delivery",
        ["subscription_id", "delivery_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("state = 'dead'"),
    )


def downgrade() -> None:
    op.drop_table("delivery", schema=SCHEMA)
    op.drop_table("subscription", schema=SCHEMA)
