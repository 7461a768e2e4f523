"""evaluation: disputes of counted events and the notice that starts their window

`event.noticed_at`: when the unit was told of a counting event (the earlier of intake's
acceptance and the event's `reported_at`), from which the days to dispute it are counted.
Events applied before this revision have none (their `dispute_until` is null) until
`sanwu evaluation rebuild` runs. `dispute`: each dispute as its last step left it, with the
correction its ruling in force makes.

Revision ID: 0006_evaluation
Revises: 0005_evaluation
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0006_evaluation"
down_revision = "0005_evaluation"
branch_labels = None
depends_on = None

SCHEMA = "evaluation"
CODE = sa.String(12)
MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("event", sa.Column("noticed_at", MOMENT), schema=SCHEMA)
    op.create_table(
        "dispute",
        sa.Column("dispute_id", UUID(as_uuid=True), nullable=False),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("outcome", sa.String(24)),
        sa.Column("new_unit_code", CODE),
        sa.Column("decider_code", CODE),
        sa.Column("decided_at", MOMENT),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("dispute_id", name="pk_dispute"),
        schema=SCHEMA,
    )
    op.create_index("ix_dispute_event_id", "dispute", ["event_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("dispute", schema=SCHEMA)
    op.drop_column("event", "noticed_at", schema=SCHEMA)
