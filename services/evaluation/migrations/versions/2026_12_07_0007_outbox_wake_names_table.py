"""evaluation: the outbox wake-up names the table whose rows committed

The status and indicator outboxes share the schema's channel; with the table's name as the
notification's payload each relay wakes for its own rows only, instead of running an empty
round for every commit of the other's.

Revision ID: 0007_evaluation
Revises: 0006_evaluation
Create Date: 2026-12-07
"""

from shared.outbox.table import name_table_in_wake, unname_table_in_wake

revision = "0007_evaluation"
down_revision = "0006_evaluation"
branch_labels = None
depends_on = None

SCHEMA = "evaluation"


def upgrade() -> None:
    name_table_in_wake(SCHEMA)


def downgrade() -> None:
    unname_table_in_wake(SCHEMA)
