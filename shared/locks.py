"""Every PostgreSQL advisory-lock key, derived in one place from a namespaced name.

All services share one database, and advisory locks share one key space per database: two
locks that happen to get the same number block each other. A key is the first 8 bytes of the
BLAKE2b hash of its name, as a signed 64-bit integer (the single-key form of
`pg_advisory_lock`), so keys of different names do not meet by accident and a new lock only
needs a new name here.
"""

import hashlib
from enum import StrEnum


class LockName(StrEnum):
    # Alembic migrations of any schema: instances starting together migrate once.
    migrations = "migrations"
    # Evaluation batches hold it shared; a rebuild's swap and a registry reconciliation hold it
    # exclusively (no batch runs meanwhile).
    evaluation_batches = "evaluation.batches"
    # Held by a running rebuild for its whole run: one rebuild at a time.
    evaluation_rebuild = "evaluation.rebuild"
    # Statuses of one county's units change only under that county's lock (scoped by county).
    evaluation_county = "evaluation.county"
    # Every transaction that writes reporting's read model.
    reporting_apply = "reporting.apply"
    # Every transaction that records an application step (held from before it changes any
    # application row): steps commit in step_id order, which the applications feed relies on.
    applications_steps = "applications.steps"
    # Held by each transaction that applies statuses to the applications service's view
    # (its consumer, a rebuild), before the steps lock when it flags.
    applications_statuses = "applications.statuses"
    # Held by the relay publishing an outbox (scoped by the outbox's table) for its round: with
    # several instances one publishes at a time, so each key's messages keep their order.
    outbox_relay = "outbox.relay"


def lock_key(name: LockName, scope: str | None = None) -> int:
    """The advisory-lock key of `name`, or of one `scope` of it (a county code, say)."""
    text = name.value if scope is None else f"{name.value}/{scope}"
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
