"""The evaluation tests run the real intake app (events reach Kafka through its outbox relay)
and the real evaluation app (consumer, status relay, rolling expiry), for this package only."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from services.evaluation.config import Clock, EvaluationSettings
from services.evaluation.main import EvaluationWorker
from services.evaluation.main import create_app as create_evaluation_app
from services.intake.config import IntakeSettings
from services.intake.main import create_app as create_intake_app
from shared.config import Settings
from shared.db import Database
from shared.registry.generator import generate, write_csv
from shared.registry.loader import load_file
from tests.conftest import serve
from tests.evaluation.helpers import WORLDS_PROVINCE, Desk, Worlds


@dataclass
class Evaluation:
    app: FastAPI
    client: httpx.AsyncClient
    worker: EvaluationWorker
    settings: EvaluationSettings
    clock: Clock


@pytest.fixture(scope="package")
async def intake(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    intake_settings = IntakeSettings(relay_idle_poll_seconds=0.2)
    async with serve(create_intake_app(intake_settings), "http://intake") as client:
        yield client


@pytest.fixture(scope="package")
async def desk(intake: httpx.AsyncClient, keys: dict[str, str]) -> Desk:
    return Desk(intake, keys["admin"])


@pytest.fixture(scope="package")
def evaluation_settings(settings: Settings) -> EvaluationSettings:
    return EvaluationSettings(
        evaluation_poll_ms=50,
        status_relay_idle_poll_seconds=0.2,
        evaluation_session_timeout_ms=6000,
    )


@pytest.fixture(scope="package")
async def evaluation(evaluation_settings: EvaluationSettings) -> AsyncIterator[Evaluation]:
    clock = Clock()
    app = create_evaluation_app(evaluation_settings, clock=clock)
    async with serve(app, "http://evaluation") as client:
        yield Evaluation(app, client, app.state.worker, evaluation_settings, clock)


@pytest.fixture(scope="package")
async def worlds(
    evaluation: Evaluation, db: Database, tmp_path_factory: pytest.TempPathFactory
) -> Worlds:
    """Units of their own for each test: the shared counties and a province for this package
    alone, loaded before the first test takes any."""
    path = tmp_path_factory.mktemp("worlds") / "province.csv"
    with path.open("w", encoding="utf-8") as handle:
        write_csv(generate(WORLDS_PROVINCE), handle)
    async with db.engine.begin() as connection:
        await load_file(connection, path)
    registry = evaluation.worker.registry
    await registry.refresh()
    return Worlds(registry)
