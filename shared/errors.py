"""Domain errors. Each maps to one problem+json response in `shared.problems`."""

from typing import Any


class DomainError(Exception):
    status = 400
    title = "Bad request"
    slug = "bad-request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class InvalidInput(DomainError):
    """Input that is well-formed JSON but breaks a rule (unknown unit, destination below level)."""

    status = 422
    title = "Invalid input"
    slug = "validation"


class Unauthenticated(DomainError):
    status = 401
    title = "Unauthenticated"
    slug = "unauthenticated"

    def __init__(self, detail: str, *, reason: str = "unknown") -> None:
        super().__init__(detail)
        self.reason = reason  # missing, malformed, unknown, revoked, expired


class OutOfScope(DomainError):
    status = 403
    title = "Outside the key's scope"
    slug = "out-of-scope"

    def __init__(self, detail: str, *, reason: str = "scope") -> None:
        super().__init__(detail)
        self.reason = reason  # role (not this key's kind of work) or scope (not its units)


class NotFound(DomainError):
    status = 404
    title = "Not found"
    slug = "not-found"


class UnitNotFound(NotFound):
    title = "Unknown unit"
    slug = "unit-not-found"


class EventNotFound(NotFound):
    title = "Unknown event"
    slug = "event-not-found"


class PeriodNotFound(NotFound):
    title = "Unknown period"
    slug = "period-not-found"


class EventConflict(DomainError):
    status = 409
    title = "Event id already used with other content"
    slug = "event-conflict"


class ApplicationNotFound(NotFound):
    title = "Unknown application"
    slug = "application-not-found"


class TitleNotFound(NotFound):
    title = "No such title"
    slug = "title-not-found"


class StateConflict(DomainError):
    """The request does not fit the current state (an application already submitted, a unit
    not eligible now, outside the application window); `errors` names each unit and why."""

    status = 409
    title = "Conflicts with the current state"
    slug = "state-conflict"


class PreconditionFailed(DomainError):
    """If-Match named a version that is no longer current: someone else acted first."""

    status = 412
    title = "Stale version"
    slug = "stale-version"


class PreconditionRequired(DomainError):
    status = 428
    title = "If-Match required"
    slug = "if-match-required"


class PayloadTooLarge(DomainError):
    status = 413
    title = "Request body too large"
    slug = "payload-too-large"


class RateLimited(DomainError):
    status = 429
    title = "Too many requests"
    slug = "rate-limited"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class RequestTimeout(DomainError):
    status = 408
    title = "Request body too slow"
    slug = "request-timeout"


class DependencyUnavailable(DomainError):
    status = 503
    title = "A dependency is unavailable"
    slug = "dependency-unavailable"

    def __init__(self, dependency: str, reason: str = "") -> None:
        super().__init__(f"{dependency} is unavailable; nothing was accepted")
        self.dependency = dependency
        self.reason = reason


class PoolExhausted(DependencyUnavailable):
    """Every database connection of this process stayed busy for the pool's timeout."""

    def __init__(self, dependency: str, reason: str = "") -> None:
        super().__init__(dependency, reason)
        self.detail = (
            f"every {dependency} connection of this instance is busy; nothing was accepted; "
            "retry shortly"
        )


class CommitOutcomeUnknown(DependencyUnavailable):
    """The database went away while committing: the request may or may not have taken effect.
    Repeating it is safe (events are idempotent by event_id) and settles it."""

    status = 504
    title = "Outcome unknown"
    slug = "outcome-unknown"

    def __init__(self, dependency: str, reason: str = "") -> None:
        super().__init__(dependency, reason)
        self.detail = (
            f"{dependency} went away while committing: the request may or may not have taken "
            "effect; repeat it unchanged (an event counts once, whatever the repeats)"
        )


class BrokerRefused(DependencyUnavailable):
    """Kafka answered but refused this client: credentials, certificate or SASL mechanism. No
    retry mends that, so a process meeting it at start stops there."""

    def __init__(self, dependency: str, reason: str = "") -> None:
        super().__init__(dependency, reason)
        self.detail = f"{dependency} refused this client: {reason}"
        self.args = (self.detail,)
