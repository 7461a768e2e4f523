"""The audit service's own schema: the log's leaves, the hashes of its complete subtrees, its
size (one row, the lock every append takes) and the checkpoints it signed. Leaves, subtrees and
checkpoints are history: the database refuses to change or remove their rows.

Rows are written in batches and read by position, never as objects: `sa.Table`s on the shared
metadata. The migrations create them (columns and types here as there)."""

import sqlalchemy as sa
from sqlmodel import SQLModel

SCHEMA = "audit"
MOMENT = sa.DateTime(timezone=True)

leaf = sa.Table(
    "leaf",
    SQLModel.metadata,
    sa.Column("leaf_index", sa.BigInteger, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("record_id", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # the canonical JSON, the leaf's bytes in UTF-8
    sa.Column("appended_at", MOMENT, nullable=False),
    sa.UniqueConstraint("kind", "record_id", name="uq_leaf_kind_record_id"),
    schema=SCHEMA,
)

# The hash of every complete subtree: 2^level leaves from position·2^level (level 0: the
# leaves' own hashes).
node = sa.Table(
    "node",
    SQLModel.metadata,
    sa.Column("level", sa.SmallInteger, primary_key=True),
    sa.Column("position", sa.BigInteger, primary_key=True),
    sa.Column("hash", sa.LargeBinary, nullable=False),
    schema=SCHEMA,
)

head = sa.Table(
    "head",
    SQLModel.metadata,
    sa.Column("one_row", sa.Boolean, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.CheckConstraint("one_row", name="ck_head_one_row"),
    schema=SCHEMA,
)

checkpoint = sa.Table(
    "checkpoint",
    SQLModel.metadata,
    sa.Column("checkpoint_id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root_hash", sa.LargeBinary, nullable=False),
    sa.Column("signed_at", MOMENT, nullable=False),
    sa.Column("key_id", sa.Text, nullable=False),
    sa.Column("signature", sa.LargeBinary, nullable=False),
    schema=SCHEMA,
)
