"""The console's only table: its sessions. The key of a session is stored sealed with the
session token, which only the browser holds (its cookie): the table alone reveals no key."""

import sqlalchemy as sa

metadata = sa.MetaData(schema="console")

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("session_id", sa.Text, primary_key=True),  # sha256 of the token, hex
    sa.Column("key_id", sa.Text, nullable=False),
    sa.Column("sealed_key", sa.LargeBinary, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("scope_code", sa.CHAR(12), nullable=True),
    sa.Column("csrf_token", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)
