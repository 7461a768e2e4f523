"""Readiness means "can do its job". Intake accepts events while the broker is down (they wait
in its outbox), and reporting serves its read model: both stay ready and report the broker's
state. Evaluation cannot work without the broker: it is not ready. Each service is pointed at
a port where no broker listens; the shared Kafka keeps running."""

import httpx

from services.evaluation.config import EvaluationSettings
from services.evaluation.main import create_app as create_evaluation_app
from services.intake.config import IntakeSettings
from services.intake.main import create_app as create_intake_app
from services.reporting.config import ReportingSettings
from services.reporting.main import create_app as create_reporting_app
from shared.config import Settings
from tests.conftest import COUNTY, VILLAGE, bearer, serve
from tests.support import events
from tests.support.processes import free_port


def no_broker() -> str:
    return f"127.0.0.1:{free_port()}"  # nothing listens there


async def readiness(client: httpx.AsyncClient) -> tuple[int, dict[str, object]]:
    response = await client.get("/readyz")
    return response.status_code, response.json()


async def test_intake_stays_ready_and_accepts_while_the_broker_is_down(
    settings: Settings, keys: dict[str, str]
) -> None:
    app = create_intake_app(
        IntakeSettings(kafka_bootstrap_servers=no_broker(), intake_run_relay=False)
    )
    async with serve(app, "http://intake") as client:
        status, body = await readiness(client)
        # An event in no period of the campaign: accepted, and it changes no status.
        event = events.visit(VILLAGE, occurred_at="2010-06-03T09:30:00+08:00")
        posted = await client.post("/v1/events", json=event, headers=bearer(keys["county_desk"]))
    assert status == 200
    assert body == {
        "status": "degraded",
        "checks": {"database": True, "kafka": False},
        "required": ["database"],
    }
    assert posted.status_code == 202, posted.text


async def test_reporting_stays_ready_and_serves_while_the_broker_is_down(
    settings: Settings, keys: dict[str, str]
) -> None:
    app = create_reporting_app(
        ReportingSettings(kafka_bootstrap_servers=no_broker(), reporting_run_consumer=False)
    )
    async with serve(app, "http://reporting") as client:
        status, body = await readiness(client)
        summary = await client.get(
            "/v1/reports/summary",
            params={"root": COUNTY, "period": "2018"},
            headers=bearer(keys["county_reader"]),
        )
    assert status == 200
    assert body == {
        "status": "degraded",
        "checks": {"database": True, "kafka": False},
        "required": ["database"],
    }
    assert summary.status_code == 200, summary.text


async def test_evaluation_is_not_ready_without_the_broker(settings: Settings) -> None:
    app = create_evaluation_app(
        EvaluationSettings(
            kafka_bootstrap_servers=no_broker(),
            evaluation_run_consumer=False,
            status_relay_enabled=False,
        )
    )
    async with serve(app, "http://evaluation") as client:
        status, body = await readiness(client)
    assert status == 503
    assert body == {
        "status": "not ready",
        "checks": {"database": True, "kafka": False, "consumer": True},
        "required": ["database", "kafka", "consumer"],
    }


async def test_every_service_is_ready_with_the_broker_up(settings: Settings) -> None:
    app = create_intake_app(IntakeSettings(intake_run_relay=False))
    async with serve(app, "http://intake") as client:
        status, body = await readiness(client)
    assert status == 200
    assert body["status"] == "ready" and body["checks"] == {"database": True, "kafka": True}
