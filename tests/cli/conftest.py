"""Intake served in this process, on a port of its own, for `sanwu events import` to post to."""

import asyncio
from collections.abc import AsyncIterator

import pytest
import uvicorn

from services.intake.config import IntakeSettings
from services.intake.main import create_app
from tests.support.processes import free_port


@pytest.fixture(scope="module")
async def intake_url(intake_settings: IntakeSettings) -> AsyncIterator[str]:
    """Intake listening on a port of its own, in this process, for the command to post to."""
    port = free_port()
    config = uvicorn.Config(
        create_app(intake_settings), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(300):
        if server.started:
            break
        await asyncio.sleep(0.1)
    assert server.started, "intake did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
