"""audit: the Merkle log's leaves, complete subtrees, size and signed checkpoints

Revision ID: 0001_audit
Revises:
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from shared.append_only import drop_append_only, make_append_only

revision = "0001_audit"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "audit"
MOMENT = sa.DateTime(timezone=True)
HISTORY = ("leaf", "node", "checkpoint")


def upgrade() -> None:
    op.create_table(
        "leaf",
        sa.Column("leaf_index", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("record_id", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("appended_at", MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("leaf_index", name="pk_leaf"),
        # One leaf per record: a record delivered again appends nothing.
        sa.UniqueConstraint("kind", "record_id", name="uq_leaf_kind_record_id"),
        sa.CheckConstraint("leaf_index >= 0", name="ck_leaf_index"),
        schema=SCHEMA,
    )
    op.create_table(
        "node",
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("level", "position", name="pk_node"),
        sa.CheckConstraint("octet_length(hash) = 32", name="ck_node_hash"),
        schema=SCHEMA,
    )
    op.create_table(
        "head",
        sa.Column("one_row", sa.Boolean, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("one_row", name="pk_head"),
        sa.CheckConstraint("one_row", name="ck_head_one_row"),
        schema=SCHEMA,
    )
    op.execute(f"INSERT INTO {SCHEMA}.head (one_row, size) VALUES (true, 0)")
    op.create_table(
        "checkpoint",
        sa.Column("checkpoint_id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.LargeBinary, nullable=False),
        sa.Column("signed_at", MOMENT, nullable=False),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("checkpoint_id", name="pk_checkpoint"),
        schema=SCHEMA,
    )
    op.create_index("ix_checkpoint_size", "checkpoint", ["size"], schema=SCHEMA)
    for table in HISTORY:
        make_append_only(SCHEMA, table)


def downgrade() -> None:
    for table in HISTORY:
        drop_append_only(SCHEMA, table)
    op.drop_table("checkpoint", schema=SCHEMA)
    op.drop_table("head", schema=SCHEMA)
    op.drop_table("node", schema=SCHEMA)
    op.drop_table("leaf", schema=SCHEMA)
