"""Structured JSON logs with a correlation id that travels from the request into Kafka headers."""

import logging
import os
import re
import sys

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CORRELATION_HEADER = "x-correlation-id"
VALID_CORRELATION_ID = re.compile(rb"[\x21-\x7e]{1,64}")


class CurrentStderr:
    """Writes to whatever `sys.stderr` is when a line is logged rather than when logging was
    configured: loggers are cached on first use, and a stream bound then would miss a later
    redirect of stderr (a test capturing it, a command's wrapper)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "INFO", *, json: bool = True) -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    # Loggers cached on first use hold the processor list itself, so it is refilled in place:
    # a later configure (another service in the same process, a test capturing logs) then
    # reaches them too.
    processors = structlog.get_config()["processors"]
    processors[:] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )


def correlation_id_of(incoming: bytes | None) -> str:
    """The client's id if it is 1 to 64 visible ASCII characters; otherwise a fresh one.

    An id travels into logs, the journal and Kafka headers, so it must be plain text; a bad one
    is a tracing aid gone wrong rather than a bad request, so the request goes on under a
    fresh id, which the response's header tells the client."""
    if incoming is not None and VALID_CORRELATION_ID.fullmatch(incoming):
        return incoming.decode("ascii")
    return os.urandom(16).hex()


class CorrelationIdMiddleware:
    """Binds a correlation id (from the request header if usable, or new) for the request's
    logs and echoes it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(CORRELATION_HEADER.encode())
        correlation_id = correlation_id_of(incoming)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        scope.setdefault("state", {})["correlation_id"] = correlation_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append(
                    (CORRELATION_HEADER.encode(), correlation_id.encode())
                )
            await send(message)

        await self.app(scope, receive, send_with_id)
