"""The title's lifecycle: create, submit, review, award, revoke, and the reads (applications,
history, titles, the feed). Every change runs in one transaction that holds the steps lock,
checks If-Match against the application's version, and records its steps with their outbox
messages; a refusal raises before anything is written.

Creating and submitting read statuses for eligibility: they take the status consumer's lock
first (the order the consumer takes both in), so no status changes under them unflagged.

Checks run in this order: the key's role and level may take this step at all (403), the
application or title exists (404), the key's scope covers its county (403), the version is
current (428/412), the request fits the application (422), then its state (409).

The parts: `applying` (the county creates and submits), `deciding` (the city reviews, the
province awards and revokes), `reading` (applications, history, titles, the feed), with the
refusals they name in `refusals` and what they share in `base`.
"""

from services.applications.applying import Applying
from services.applications.deciding import Deciding
from services.applications.reading import Reading


class ApplicationsService(Applying, Deciding, Reading):
    """The whole lifecycle behind the routes: one object, built once by the app."""
