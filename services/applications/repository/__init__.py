"""Every SQL statement of the applications service, one module per store: `applications`
(applications, their units, the titles), `steps` (the history), `statuses` (the view of
statuses), `flags` (the flags statuses raise on application units), `indicators` (the view of
work records).

Rows read or written by key are SQLAlchemy statements on the SQLModel models of
`services.applications.models`, through the session; the consumers' batches (`unnest`,
`ON CONFLICT`) are SQL text constants on the session's asyncpg connection."""

from services.applications.repository.applications import STEPS_LOCK, ApplicationsRepository
from services.applications.repository.flags import FlagsRepository
from services.applications.repository.indicators import IndicatorsRepository
from services.applications.repository.statuses import STATUSES_LOCK, Key, StatusRepository
from services.applications.repository.steps import StepsRepository

__all__ = [
    "STATUSES_LOCK",
    "STEPS_LOCK",
    "ApplicationsRepository",
    "FlagsRepository",
    "IndicatorsRepository",
    "Key",
    "StatusRepository",
    "StepsRepository",
]
