"""The evidence a submission snapshots per unit shows the unit's work records when the
indicator topic has brought them: its meeting cadence for the period as of the submit day and
its satisfaction (群众满意率), both null for a unit without indicators. The service reads the
indicator topic as a consumer group of its own: the newest version per unit and period wins,
a malformed message is dead-lettered and stores nothing."""

import io
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import openpyxl
import pytest
import sqlalchemy as sa
from aiokafka.structs import RecordMetadata

from services.applications.config import ApplicationsSettings
from services.applications.consumers import IndicatorConsumer
from services.applications.models import unit_indicators
from shared import kafka
from shared.db import Database
from shared.events import RatingSource
from shared.indicators import UnitIndicators
from tests.conftest import TOWNSHIP, VILLAGE
from tests.support.app import bearer
from tests.support.applications import act, create
from tests.support.dead_letters import dead_letter_reasons
from tests.support.dynamic import Applications
from tests.support.reporting import StatusPublisher, indicators, wait_committed

V1, V2 = VILLAGE, "340722100202"  # villages of 枞阳镇
PETITIONER, THIRD_PARTY = RatingSource.petitioner, RatingSource.third_party


@pytest.fixture(scope="module")
async def indicator_consumer(
    applications: httpx.AsyncClient, applications_settings: ApplicationsSettings, db: Database
) -> AsyncIterator[IndicatorConsumer]:
    """The service under test runs without consumers (its statuses are written straight in):
    its indicator consumer runs here, on the service's database, once the service migrated it."""
    await kafka.ensure_topics(applications_settings)
    consumer = IndicatorConsumer(db=db, settings=applications_settings)
    consumer.start()
    yield consumer
    await consumer.stop()


@pytest.fixture(scope="module")
async def publisher(applications_settings: ApplicationsSettings) -> AsyncIterator[StatusPublisher]:
    publisher = StatusPublisher(applications_settings)  # type: ignore[arg-type]
    await publisher.start()
    yield publisher
    await publisher.stop()


async def consumed(consumer: IndicatorConsumer, sent: list[RecordMetadata]) -> None:
    await wait_committed(consumer.settings, sent, group=consumer.group_id)  # type: ignore[arg-type]


async def published(
    consumer: IndicatorConsumer, publisher: StatusPublisher, *messages: UnitIndicators
) -> None:
    await consumed(consumer, await publisher.publish_indicators(*messages))


async def submitted_evidence(
    client: httpx.AsyncClient, key: str, *, period: str, codes: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    draft = await create(client, key, period=period, codes=codes)
    assert draft.status_code == 201, draft.text
    response = await act(client, key, application=draft.json(), action="submit")
    assert response.status_code == 200, response.text
    application = response.json()
    return application, {u["code"]: u["evidence"] for u in application["units"]}


async def stored_indicators(db: Database, period: str) -> dict[str, tuple[int, dict[str, Any]]]:
    t = unit_indicators
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.select(t.c.unit_code, t.c.version, t.c.ratings).where(t.c.period == period)
        )
        return {r.unit_code: (r.version, r.ratings) for r in rows}


async def test_submit_snapshots_cadence_and_satisfaction_where_indicators_exist(
    applications: httpx.AsyncClient,
    bureau_keys: dict[str, str],
    indicator_consumer: IndicatorConsumer,
    publisher: StatusPublisher,
) -> None:
    period = "a-records"  # 2019: every slot has ended by the submit day
    await published(
        indicator_consumer,
        publisher,
        indicators(
            TOWNSHIP,
            period,
            1,
            meetings_held=[date(2019, 1, 1), date(2019, 1, 16), date(2019, 3, 1)],
            ratings={PETITIONER: (6, 2, 1), THIRD_PARTY: (0, 0, 1)},
        ),
        indicators(V1, period, 1, meetings_held=[date(2019, 1, 7)]),
    )
    key = bureau_keys["county_bureau"]

    application, evidence = await submitted_evidence(
        applications, key, period=period, codes=(TOWNSHIP, V1, V2)
    )

    missed = evidence[TOWNSHIP]["cadence"].pop("missed")
    assert evidence[TOWNSHIP]["cadence"] == {  # a township meets every half month
        "cadence": "half_month",
        "required": 24,
        "held": 3,
        "open": None,
        "compliance": 3 / 24,
        "kept": False,
    }
    assert len(missed) == 21 and missed[0] == "2019-02-01" and "2019-03-01" not in missed
    assert evidence[TOWNSHIP]["satisfaction"] == {
        "total": 10,
        "satisfied": 6,
        "basically_satisfied": 2,
        "dissatisfied": 2,
        "rate": 0.8,
    }
    assert evidence[V1]["cadence"]["cadence"] == "week"  # a village meets every week
    assert (evidence[V1]["cadence"]["required"], evidence[V1]["cadence"]["held"]) == (52, 1)
    assert evidence[V1]["satisfaction"] == {
        "total": 0,
        "satisfied": 0,
        "basically_satisfied": 0,
        "dissatisfied": 0,
        "rate": None,
    }
    assert evidence[V2]["cadence"] is None and evidence[V2]["satisfaction"] is None

    response = await applications.get(
        f"/v1/applications/{application['application_id']}/materials",
        params={"format": "xlsx"},
        headers=bearer(key),
    )
    assert response.status_code == 200, response.text
    sheet = openpyxl.load_workbook(io.BytesIO(response.content))["申报单位"]
    rows = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert (rows[TOWNSHIP][8], rows[TOWNSHIP][9]) == ("应开24次，已开3次，缺开21次", "80.0%")
    assert (rows[V1][9], rows[V2][8], rows[V2][9]) == ("暂无评价", "暂无记录", "暂无记录")


async def test_an_older_version_after_a_newer_changes_nothing(
    applications: httpx.AsyncClient,
    bureau_keys: dict[str, str],
    db: Database,
    indicator_consumer: IndicatorConsumer,
    publisher: StatusPublisher,
) -> None:
    period = "a-records-newer"
    newer = indicators(
        TOWNSHIP, period, 2, meetings_held=[date(2019, 1, 1)], ratings={PETITIONER: (9, 0, 1)}
    )
    older = indicators(TOWNSHIP, period, 1, ratings={PETITIONER: (0, 0, 5)})
    await published(indicator_consumer, publisher, newer)
    await published(indicator_consumer, publisher, older)  # a batch of its own
    await published(indicator_consumer, publisher, older, newer.model_copy())  # again, together

    assert await stored_indicators(db, period) == {
        TOWNSHIP: (2, {"petitioner": {"satisfied": 9, "basically_satisfied": 0, "dissatisfied": 1}})
    }
    _, evidence = await submitted_evidence(
        applications, bureau_keys["county_bureau"], period=period, codes=(TOWNSHIP,)
    )
    assert evidence[TOWNSHIP]["satisfaction"]["rate"] == 0.9
    assert evidence[TOWNSHIP]["cadence"]["held"] == 1


async def test_a_malformed_message_is_dead_lettered_and_stores_nothing(
    applications_settings: ApplicationsSettings,
    db: Database,
    indicator_consumer: IndicatorConsumer,
    publisher: StatusPublisher,
) -> None:
    period = "a-records-malformed"
    good = indicators(V1, period, 1)
    wrong_key = indicators(V2, period, 1)
    negative = indicators(V2, period, 1, ratings={PETITIONER: (-1, 0, 0)})
    sent = await publisher.publish_raw(
        [
            (good.key, b"{not json"),
            (b"someone-else:" + period.encode(), wrong_key.model_dump_json().encode()),
            (negative.key, negative.model_dump_json().encode()),
            (good.key, good.model_dump_json().encode()),
        ],
        topic=applications_settings.indicator_topic,
    )
    await consumed(indicator_consumer, sent)

    assert await stored_indicators(db, period) == {V1: (1, {})}
    reasons = await dead_letter_reasons(applications_settings, sent, by="applications-indicators")
    expected = ["not unit indicators", "is not unit_code:period", "rating counts must lie within"]
    for reason, part in zip(reasons[:3], expected, strict=True):
        assert reason is not None and part in reason, reasons
    assert reasons[3] is None, reasons


async def test_the_service_reads_the_indicator_topic_in_a_group_of_its_own(
    dynamic: Applications, status_publisher: StatusPublisher, db: Database
) -> None:
    consumer: IndicatorConsumer = dynamic.app.state.indicator_consumer
    assert consumer.running
    assert consumer.group_id == f"{dynamic.settings.topic_prefix}applications-indicators"
    assert consumer.topic == dynamic.settings.indicator_topic
    period = "t-dyn-records"
    sent = await status_publisher.publish_indicators(indicators(V1, period, 3))
    await consumed(consumer, sent)

    assert await stored_indicators(db, period) == {V1: (3, {})}
