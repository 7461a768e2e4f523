"""intake outbox: no NOTIFY per accepted event; the relay in the same process is woken directly

Every accepted event is its own transaction, and a NOTIFY makes the commits that send one
take turns (and costs the server about a third more per event). A relay in another process
polls instead (`relay_idle_poll_seconds`).

Revision ID: 0002_intake
Revises: 0001_intake
Create Date: 2026-11-28
"""

from shared.outbox import create_wake_trigger, drop_wake_trigger

revision = "0002_intake"
down_revision = "0001_intake"
branch_labels = None
depends_on = None


def upgrade() -> None:
    drop_wake_trigger("intake")


def downgrade() -> None:
    create_wake_trigger("intake")
