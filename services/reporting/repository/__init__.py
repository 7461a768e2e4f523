"""Every SQL statement of reporting, one module per store. Statements the consumers' batches,
summaries and status reads run are SQL text constants on the asyncpg connection; the rest
(the registry follow, the feed pages, a rebuild's tables) are SQLAlchemy statements through
the session. Writers of the read model take `ReadModelWrites.lock_writes` first."""

from services.reporting.repository.counts import CountRepository
from services.reporting.repository.disputes import DisputeRepository
from services.reporting.repository.feed import FeedRepository
from services.reporting.repository.indicators import IndicatorRepository
from services.reporting.repository.rebuild import RebuildRepository, RecordsRebuildRepository
from services.reporting.repository.statuses import StatusRepository
from services.reporting.repository.warnings import WarningRepository
from services.reporting.repository.writes import APPLY_LOCK, ReadModelWrites

__all__ = [
    "APPLY_LOCK",
    "CountRepository",
    "DisputeRepository",
    "FeedRepository",
    "IndicatorRepository",
    "ReadModelWrites",
    "RebuildRepository",
    "RecordsRebuildRepository",
    "StatusRepository",
    "WarningRepository",
]
