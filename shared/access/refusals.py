"""Every 401 and 403 is logged and counted here, with the key id the request named (never its
secret): shared.problems calls `record` for each one it answers."""

import structlog
from starlette.requests import Request

from shared.access.metrics import refused
from shared.access.service import claimed_key_id
from shared.errors import OutOfScope, Unauthenticated

log = structlog.get_logger(__name__)


def record(request: Request, refusal: Unauthenticated | OutOfScope) -> None:
    refused.labels(status=str(refusal.status), reason=refusal.reason).inc()
    log.warning(
        "access_refused",
        status=refusal.status,
        reason=refusal.reason,
        key_id=claimed_key_id(request.headers.get("authorization")),
        method=request.method,
        path=request.url.path,
        client=request.client.host if request.client else None,
    )
