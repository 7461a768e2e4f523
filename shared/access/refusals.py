"""Every 401 and 403 is logged and counted here, with the key id the request named (never its
secret): shared.problems calls `record` for each one it answers, and the console's error pages
and sign-in for each of theirs."""

import structlog
from starlette.requests import Request

from shared.access.metrics import refused
from shared.access.service import claimed_key_id
from shared.errors import DomainError

log = structlog.get_logger(__name__)


def record(request: Request, refusal: DomainError, *, key_id: str | None = None) -> None:
    """`refusal` is a 401 or 403 with a `reason`; `key_id` the key it concerns, when the
    request carries its key otherwise than in an Authorization header (a console session, the
    sign-in form)."""
    reason = getattr(refusal, "reason", refusal.slug)
    refused.labels(status=str(refusal.status), reason=reason).inc()
    log.warning(
        "access_refused",
        status=refusal.status,
        reason=reason,
        key_id=key_id or claimed_key_id(request.headers.get("authorization")),
        method=request.method,
        path=request.url.path,
        client=request.client.host if request.client else None,
    )
