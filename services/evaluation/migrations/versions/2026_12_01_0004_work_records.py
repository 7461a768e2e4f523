"""evaluation: meetings and ratings of units, their indicators per period, and their outbox

Events gain a rating and its source (a meeting or a rating's type needs 24 characters);
effects gain a meeting's slot and a rating's source and rating; `indicators` holds each
(unit, period)'s meeting slots and rating counts, `indicator_outbox` their changes to publish.
Work records applied before this revision counted as incidents: run `sanwu evaluation rebuild`.

Revision ID: 0004_evaluation
Revises: 0003_evaluation
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

from shared.outbox import outbox_table

revision = "0004_evaluation"
down_revision = "0003_evaluation"
branch_labels = None
depends_on = None

SCHEMA = "evaluation"
CODE = sa.String(12)
MOMENT = sa.DateTime(timezone=True)
SOURCES = ("petitioner", "third_party", "representative")
RATINGS = ("satisfied", "basically_satisfied", "dissatisfied")


def upgrade() -> None:
    op.alter_column("event", "type", type_=sa.String(24), schema=SCHEMA)
    op.add_column("event", sa.Column("rating", sa.String(24)), schema=SCHEMA)
    op.add_column("event", sa.Column("source", sa.String(16)), schema=SCHEMA)
    op.add_column("effect", sa.Column("slot", sa.Date), schema=SCHEMA)
    op.add_column("effect", sa.Column("source", sa.String(16)), schema=SCHEMA)
    op.add_column("effect", sa.Column("rating", sa.String(24)), schema=SCHEMA)
    op.create_table(
        "indicators",
        sa.Column("unit_code", CODE, nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("meetings_held", ARRAY(sa.Date), nullable=False),
        *[
            sa.Column(f"{source}_{rating}", sa.Integer, nullable=False)
            for source in SOURCES
            for rating in RATINGS
        ],
        sa.Column("changed_at", MOMENT, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("unit_code", "period", name="pk_indicators"),
        schema=SCHEMA,
    )
    op.create_table(
        "indicator_outbox",
        *[c._copy() for c in outbox_table(SCHEMA, name="indicator_outbox").columns],
        schema=SCHEMA,
    )
    # The same wake-up as the status outbox (0001): both relays listen on the schema's channel.
    op.execute(
        f"""
        CREATE TRIGGER indicator_outbox_notify AFTER INSERT ON {SCHEMA}.indicator_outbox
        FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.notify_outbox()
        """
    )


def downgrade() -> None:
    op.drop_table("indicator_outbox", schema=SCHEMA)
    op.drop_table("indicators", schema=SCHEMA)
    for table, column in (
        ("effect", "rating"),
        ("effect", "source"),
        ("effect", "slot"),
        ("event", "source"),
        ("event", "rating"),
    ):
        op.drop_column(table, column, schema=SCHEMA)
    op.alter_column("event", "type", type_=sa.String(16), schema=SCHEMA)
