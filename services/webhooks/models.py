"""The webhooks service's own schema: the subscriptions (with their keys: the HMAC secret and
the Ed25519 seed, and the previous pair during a rotation's overlap) and their deliveries, one
per change and subscription, kept after they are delivered or dead. The migrations create
them (columns and types here as there)."""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import SQLModel

SCHEMA = "webhooks"
MOMENT = sa.DateTime(timezone=True)

subscription = sa.Table(
    "subscription",
    SQLModel.metadata,
    sa.Column("subscription_id", sa.Uuid, primary_key=True),
    sa.Column("key_id", sa.Text, nullable=False),  # who made it
    sa.Column("scope_code", sa.Text),  # its units: the key's scope (None: an admin's, all)
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("kinds", postgresql.ARRAY(sa.Text), nullable=False),
    sa.Column("secret", sa.LargeBinary, nullable=False),
    sa.Column("signing_seed", sa.LargeBinary, nullable=False),
    sa.Column("previous_secret", sa.LargeBinary),
    sa.Column("previous_signing_seed", sa.LargeBinary),
    sa.Column("previous_until", MOMENT),
    sa.Column("state", sa.Text, nullable=False),  # active, disabled
    sa.Column("disabled_reason", sa.Text),
    sa.Column("created_at", MOMENT, nullable=False),
    sa.Column("changed_at", MOMENT, nullable=False),
    schema=SCHEMA,
)

delivery = sa.Table(
    "delivery",
    SQLModel.metadata,
    # In the order the changes were read: a unit's deliveries go out in this order.
    sa.Column("delivery_id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "subscription_id",
        sa.Uuid,
        sa.ForeignKey(f"{SCHEMA}.subscription.subscription_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("message_id", sa.Text, nullable=False),
    sa.Column("unit_code", sa.Text, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("happened_at", MOMENT, nullable=False),
    sa.Column("created_at", MOMENT, nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # pending, delivered, dead
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("due_at", MOMENT, nullable=False),
    sa.Column("leased_until", MOMENT),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("finished_at", MOMENT),
    sa.UniqueConstraint("subscription_id", "message_id", name="uq_delivery_message"),
    schema=SCHEMA,
)
