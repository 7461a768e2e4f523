"""A rebuild's index builds: each once, on the rebuild's connection while the warnings are being
found beside them, then shared with a second connection; they never wait for the warnings."""

import asyncio
from typing import Any

import pytest

from services.evaluation.config import EvaluationSettings
from services.evaluation.rebuild import run
from services.evaluation.rebuild.repository import STAGING, RebuildRepository

STATEMENTS = [f"CREATE INDEX ix_{n} ON t (c{n})" for n in range(6)]


class Connection:
    """Records the index statements it is given; each takes a moment."""

    def __init__(self) -> None:
        self.built: list[str] = []
        self.closed = False

    async def fetchval(self, statement: str) -> str:
        return "8"  # max_parallel_maintenance_workers

    async def execute(self, statement: str, *args: Any) -> str:
        if statement.startswith("CREATE INDEX"):
            await asyncio.sleep(0.01)
            self.built.append(statement)
        return "OK"

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def second(monkeypatch: pytest.MonkeyPatch) -> list[Connection]:
    opened: list[Connection] = []

    async def connect(settings: EvaluationSettings) -> Connection:
        opened.append(Connection())
        return opened[-1]

    monkeypatch.setattr(run, "rebuild_connection", connect)
    return opened


async def test_the_builds_never_wait_for_the_warnings(
    evaluation_settings: EvaluationSettings, second: list[Connection]
) -> None:
    first = Connection()
    finding: asyncio.Future[None] = asyncio.get_running_loop().create_future()  # never done
    staging = RebuildRepository(first, schema=STAGING)  # type: ignore[arg-type]

    await asyncio.wait_for(
        run.build_indexes(evaluation_settings, staging, list(STATEMENTS), after=finding), 5
    )

    assert first.built == STATEMENTS
    assert second == []


async def test_once_the_warnings_are_found_a_second_connection_shares_the_builds(
    evaluation_settings: EvaluationSettings, second: list[Connection]
) -> None:
    first = Connection()
    staging = RebuildRepository(first, schema=STAGING)  # type: ignore[arg-type]
    finding = asyncio.ensure_future(asyncio.sleep(0.015))  # found during the second build

    await run.build_indexes(evaluation_settings, staging, list(STATEMENTS), after=finding)

    [other] = second
    assert first.built[0] == STATEMENTS[0]
    assert other.built and other.closed
    assert sorted(first.built + other.built) == sorted(STATEMENTS)
