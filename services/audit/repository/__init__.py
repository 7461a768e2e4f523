"""Every SQL statement of the audit service, one module per store: `log` (the leaves, the
complete subtrees and the size), `checkpoints` (the signed checkpoints), `key_operations` (the
key audit's outbox it drains) and `history` (the other services' history rows, which
`sanwu audit verify` reads as the migrator).

The log is written and read in sets and by position: SQL text constants on the repository's
asyncpg connection."""

from services.audit.repository.checkpoints import CheckpointsRepository
from services.audit.repository.history import HistoryRepository
from services.audit.repository.key_operations import KeyOperationsRepository
from services.audit.repository.log import LogRepository, StoredLeaf

__all__ = [
    "CheckpointsRepository",
    "HistoryRepository",
    "KeyOperationsRepository",
    "LogRepository",
    "StoredLeaf",
]
