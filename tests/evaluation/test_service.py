"""The evaluation service as deployed: health, readiness and metrics; status changes published
to the status topic with the correlation id; a bad campaign file stops it at start."""

from pathlib import Path
from typing import Any

import pytest

from services.evaluation.config import EvaluationSettings
from services.evaluation.main import create_app
from shared.campaign import CampaignFileError
from shared.db import Database
from shared.status import UnitStatus
from tests.conftest import bearer
from tests.evaluation.conftest import Evaluation
from tests.evaluation.helpers import Desk, Worlds, read_status_topic, status, wait_applied
from tests.support import events
from tests.support.metrics import sample
from tests.support.waiting import poll, wait_until


class TestOperations:
    async def test_healthz(self, evaluation: Evaluation) -> None:
        response = await evaluation.client.get("/healthz")
        assert response.status_code == 200 and response.json() == {"status": "ok"}

    async def test_readyz_checks_database_kafka_and_consumer(self, evaluation: Evaluation) -> None:
        response = await evaluation.client.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json()["checks"] == {"database": True, "kafka": True, "consumer": True}

    async def test_metrics_show_lag_events_applied_and_batch_latency(
        self, evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database
    ) -> None:
        client = evaluation.client
        applied = "sanwu_evaluation_events_applied_total"
        before = await sample(client, applied, type="incident")
        batches = await sample(client, "sanwu_evaluation_batch_seconds_count")
        world = worlds.township()
        await wait_applied(
            db, await desk.post(events.incident(world.village, occurred_at=world.at()))
        )

        assert await sample(client, applied, type="incident") == before + 1
        assert await sample(client, "sanwu_evaluation_batch_seconds_count") > batches

        async def lag_sampled() -> bool:  # sampled once a second, per owned partition
            text = (await client.get("/metrics")).text
            return "sanwu_evaluation_consumer_lag{" in text

        await wait_until(lag_sampled, timeout=5, message="the consumer lag to be sampled")
        assert await sample(client, "sanwu_evaluation_consumer_lag") >= 0


class TestPublishing:
    async def test_each_change_is_published_keyed_by_unit_and_period_with_the_correlation_id(
        self, evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database
    ) -> None:
        world = worlds.township()
        event = events.visit(world.village, destination="city", headcount=6, occurred_at=world.at())
        response = await desk.intake.post(
            "/v1/events",
            json=event,
            headers=bearer(desk.key) | {"x-correlation-id": "corr-evaluation-1"},
        )
        assert response.status_code == 202
        await wait_applied(db, [event["event_id"]])
        stored = await status(db, world.township, world.period)
        assert stored is not None
        key = f"{world.township}:{world.period}".encode()

        async def published_for_key() -> list[dict[str, Any]]:
            return [m for m in await read_status_topic(evaluation.settings) if m["key"] == key]

        published = await poll(published_for_key, timeout=10, message="the status to be published")

        assert len(published) == 1
        message = UnitStatus.model_validate(published[0]["value"])
        assert message.version == stored["version"] == 1
        assert message.three_no is False
        assert message.counts.collective == 1 and message.people.collective == 6
        assert message.counting_event_ids == [event["event_id"]]
        assert message.changed_at == stored["changed_at"]
        assert published[0]["headers"]["correlation_id"] == b"corr-evaluation-1"


class TestCampaignFile:
    async def test_a_bad_file_stops_the_service_with_the_line(
        self, evaluation_settings: EvaluationSettings, tmp_path: Path
    ) -> None:
        shipped = evaluation_settings.campaign_file.read_text(encoding="utf-8")
        bad = tmp_path / "campaign.yaml"
        bad.write_text(shipped.replace("threshold: 50", "threshold: 0"), encoding="utf-8")
        app = create_app(evaluation_settings.model_copy(update={"campaign_file": bad}))

        line = next(n for n, text in enumerate(shipped.splitlines(), 1) if "threshold: 50" in text)
        with pytest.raises(CampaignFileError, match=rf"line {line}: rules\.county\.collective"):
            async with app.router.lifespan_context(app):
                pass
