"""A rebuild's read phase turns each record into the rows the live path's codecs write: the same
event, effect and correction rows for every event type at every level, whatever the read phase
remembers per unit and per facts; the units it asks of the registry once answer as the
registry and the live calculator do. A rebuild reports its peak memory."""

import itertools
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from services.evaluation.config import EvaluationSettings
from services.evaluation.live.corrections import new_correction
from services.evaluation.live.service import EvaluationService, new_event
from services.evaluation.main import load_campaign
from services.evaluation.rebuild.loader import Loader, Rows
from services.evaluation.rebuild.memory import peak_resident, reset_peak_resident
from services.evaluation.rebuild.readers import Read
from services.evaluation.rebuild.repository import STAGING, RebuildRepository
from services.evaluation.rebuild.units import RebuildUnits
from services.evaluation.records import correction_record, effect_record, event_record
from shared.campaign import SHANGHAI
from shared.db import Database
from shared.events import EXAMPLES, EventRecord, EventType
from shared.registry.cache import UnitRegistry

VILLAGE = "340722100201"
UNKNOWN = "340722999999"
MOMENTS = (
    datetime(2018, 6, 3, 23, 59, tzinfo=SHANGHAI),  # a Sunday, the week's last minute
    datetime(2018, 6, 3, 16, 0, tzinfo=SHANGHAI) - timedelta(microseconds=1),
    datetime(2018, 6, 15, 15, 59, 59),  # naive in the JSON below: written as UTC
    datetime(2018, 6, 15, 16, 0),  # the 16th in Shanghai: the month's second half
    datetime(2018, 12, 31, 23, 30, tzinfo=SHANGHAI),
)
VISITS = [  # counting at every level, at some and at none
    {"destination_level": destination, "headcount": headcount, "skip_level": skip}
    for destination, headcount, skip in itertools.product(
        ("village", "township", "county", "city", "province", "national"), (1, 5, 30), (False, True)
    )
] + [{"destination_level": "county", "headcount": 2, "non_reception_site": True}]


@pytest.fixture(scope="module")
async def service(evaluation_settings: EvaluationSettings, db: Database) -> EvaluationService:
    registry = UnitRegistry(db.engine)
    await registry.refresh()
    campaign = load_campaign(evaluation_settings, evaluation_settings.clock())
    return EvaluationService(campaign=campaign, registry=registry, schema=STAGING, publish=False)


def units_of(service: EvaluationService) -> list[str]:
    """A village and every unit above it, and a code the registry lacks."""
    return [u.code for u in service.registry.ancestors(VILLAGE)] + [UNKNOWN]


def records(service: EvaluationService) -> list[EventRecord]:
    """Every event type at every unit of `units_of`, visits of every kind, at every moment."""
    made = []
    serial = itertools.count()
    for unit_code, moment in itertools.product(units_of(service), MOMENTS):
        variants: list[dict[str, Any]] = [
            EXAMPLES[t] for t in EventType if t is not EventType.petition_visit
        ] + [EXAMPLES[EventType.petition_visit] | visit for visit in VISITS]
        for variant in variants:
            event = variant | {
                "event_id": f"00000000-0000-4000-8000-{next(serial):012d}",
                "unit_code": unit_code,
                "occurred_at": moment.isoformat() + ("" if moment.tzinfo else "Z"),
            }
            if variant["type"] == "event_reattributed":
                event["new_unit_code"] = VILLAGE
            made.append(
                EventRecord.model_validate(
                    {"event": event, "accepted_at": "2018-07-01T00:00:00+00:00", "key_id": "k1"}
                )
            )
    return made


def consumer_record(record: EventRecord, offset: int) -> ConsumerRecord[bytes, bytes]:
    value = json.dumps(record.model_dump(mode="json")).encode()
    return ConsumerRecord("t", 0, offset, 0, 0, b"k", value, None, 0, len(value), [])


def live_rows(service: EvaluationService, record: EventRecord) -> Rows:
    """The rows the live path's codecs write for a record whose units are known."""
    rows = Rows()
    event = record.event
    if event.type in ("event_voided", "event_reattributed"):
        rows.corrections.append(correction_record(new_correction(record)))
        return rows
    new = new_event(record)
    rows.events.append(event_record(new))
    rows.effects += [
        effect_record(e)
        for e in service.calculator.effects_for(
            event_id=new.event_id,
            facts=new.facts,
            unit_code=new.unit_code,
            occurred_at=new.occurred_at,
        )
    ]
    return rows


def loader_of(service: EvaluationService) -> Loader:
    return Loader(RebuildRepository(None, schema=STAGING), service)  # type: ignore[arg-type]


def test_the_rows_of_every_event_equal_the_live_codecs(service: EvaluationService) -> None:
    made = records(service)
    loader = loader_of(service)
    rows = Rows()
    loader.rows_of([consumer_record(r, n) for n, r in enumerate(made)], rows)

    expected = Rows()
    for record in made:
        if UNKNOWN in (record.event.unit_code, getattr(record.event, "new_unit_code", None)):
            continue  # skipped: the live consumer dead-letters it
        live = live_rows(service, record)
        expected.events += live.events
        expected.effects += live.effects
        expected.corrections += live.corrections
    assert rows.events == expected.events
    assert rows.effects == expected.effects
    assert rows.corrections == expected.corrections
    assert any(e[2] for e in rows.effects)  # some count, some are work records
    assert any(not e[2] for e in rows.effects)
    assert loader.report.skipped == len(made) - len(expected.events) - len(expected.corrections)


def test_a_repeated_event_gives_its_rows_once(service: EvaluationService) -> None:
    record = records(service)[0]
    loader = loader_of(service)
    rows = Rows()
    loader.rows_of([consumer_record(record, 0), consumer_record(record, 1)], rows)
    assert rows.events == live_rows(service, record).events
    assert loader.report.read == Read(messages=2, events=1, skipped=0)


def test_the_units_answer_as_the_registry_and_the_calculator(service: EvaluationService) -> None:
    units = RebuildUnits(calculator=service.calculator, registry=service.registry)
    for code in units_of(service):
        assert units.known(code) is (service.registry.get_cached(code) is not None)
        for moment in MOMENTS:
            moment = moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)
            assert units.meeting_slot(code, moment) == service.calculator.meeting_slot(
                code, moment
            ), (code, moment)
    assert units.meeting_slot(VILLAGE, MOMENTS[0]) is not None


def test_readers_report_the_largest_peak_memory() -> None:
    total = Read(1, 1, 0, peak_resident=300) + Read(2, 2, 1, peak_resident=200)
    assert total == Read(3, 3, 1, peak_resident=300)


def test_the_peak_memory_is_the_processs_own_since_its_reset() -> None:
    reset_peak_resident()
    before = peak_resident()
    held = bytearray(64 * 2**20)
    held[::4096] = b"x" * len(held[::4096])  # resident, page by page
    assert peak_resident() >= before + 60 * 2**20
    del held
    reset_peak_resident()
    assert peak_resident() < before + 60 * 2**20
