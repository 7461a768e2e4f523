"""The title's lifecycle: create, submit, review, award, revoke, and the reads (applications,
history, titles, the feed). Every change runs in one transaction that holds the steps lock,
checks If-Match against the application's version, and records its steps with their outbox
messages; a refusal raises before anything is written.

Creating and submitting read statuses for eligibility: they take the status consumer's lock
first (the order the consumer takes both in), so no status changes under them unflagged.

Checks run in this order: the key's role and level may take this step at all (403), the
application or title exists (404), the key's scope covers its county (403), the version is
current (428/412), the request fits the application (422), then its state (409).

The parts, each built here from what it needs: `ApplyingSteps` (the county creates and
submits), `DecidingSteps` (the city reviews, the province awards and revokes),
`ApplicationReads` (applications, history, titles, the feed), with the refusals they name in
`services.applications.refusals`.
"""

from collections.abc import Callable
from datetime import datetime

from services.applications.service.applying import ApplyingSteps
from services.applications.service.deciding import DecidingSteps
from services.applications.service.reading import ApplicationReads
from shared.campaign import CurrentCampaign, system_now
from shared.db import Database
from shared.registry.cache import UnitRegistry


class ApplicationsService:
    """The whole lifecycle behind the routes: one object, built once by the app."""

    def __init__(
        self,
        *,
        db: Database,
        registry: UnitRegistry,
        campaign: CurrentCampaign,
        window: str = "",
        clock: Callable[[], datetime] = system_now,
        on_step: Callable[[], None] | None = None,
    ) -> None:
        """`window`: the settings' window ("MM-DD/MM-DD"), empty for the campaign's; `on_step`
        wakes the relay once steps are committed."""
        woken = on_step or (lambda: None)
        self.registry = registry
        self.clock = clock
        self.applying = ApplyingSteps(
            db=db, registry=registry, campaign=campaign, window=window, clock=clock, on_step=woken
        )
        self.deciding = DecidingSteps(db=db, registry=registry, clock=clock, on_step=woken)
        self.reads = ApplicationReads(db=db, registry=registry)


__all__ = ["ApplicationReads", "ApplicationsService", "ApplyingSteps", "DecidingSteps"]
