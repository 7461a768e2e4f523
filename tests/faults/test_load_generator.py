"""The fault tests' own machinery, checked without faults: the load generator's cost per event
stays flat as the run grows, and a long fault test gets a timeout longer than its load."""

import importlib.util
import random
import time
from pathlib import Path
from types import ModuleType

import pytest

from shared.campaign import system_now
from tests.support import events
from tests.support.ledger import Ledger, Villages, next_event

HERE = Path(__file__).parent
VILLAGES = [f"340722{t:03d}{v:03d}" for t in range(100, 120) for v in range(201, 216)]


def ledger_with(accepted: int) -> Ledger:
    ledger = Ledger()
    for index in range(accepted):
        event = events.visit(VILLAGES[index % len(VILLAGES)])
        ledger.record(event, "ok")
    return ledger


def seconds_per_event(ledger: Ledger, *, picks: int = 2000) -> float:
    rng, villages, now = random.Random(7), Villages.of(VILLAGES), system_now()
    started = time.perf_counter()
    for _ in range(picks):
        next_event(rng, ledger, villages, now)
    return (time.perf_counter() - started) / picks


def test_picking_the_next_event_costs_the_same_after_many_accepted() -> None:
    small, large = ledger_with(1_000), ledger_with(100_000)
    seconds_per_event(small)  # warm up

    early, late = seconds_per_event(small), seconds_per_event(large)

    # Scanning the accepted events made the late picks about a hundred times dearer.
    assert late < 3 * early, f"{early * 1e6:.1f} µs per event early, {late * 1e6:.1f} late"
    assert len(large.accepted) == len(large.visits) == 100_000


def test_the_ledger_keeps_each_accepted_event_once_for_picking() -> None:
    ledger = Ledger()
    visit, incident = events.visit(VILLAGES[0]), events.incident(VILLAGES[1])
    for event, outcome in [(visit, "failed"), (visit, "ok"), (visit, "ok"), (incident, "ok")]:
        ledger.record(event, outcome)

    assert ledger.accepted == [visit, incident] and ledger.visits == [visit]
    assert set(ledger.ok) == {visit["event_id"], incident["event_id"]} and not ledger.failed


def timeout_of(module: ModuleType, test: str) -> float:
    marks = [m for m in getattr(getattr(module, test), "pytestmark", []) if m.name == "timeout"]
    assert marks, f"{test} has no timeout of its own"
    return float(marks[0].args[0])


def load_ledger_module(monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    """tests/faults/test_ledger.py as collection sees it under these variables."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("ledger_under_env", HERE / "test_ledger.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_long_fault_tests_get_a_timeout_that_outlasts_their_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = load_ledger_module(
        monkeypatch, SANWU_LEDGER_SECONDS="300", SANWU_KAFKA_OUTAGE_SECONDS="60"
    )

    # Besides the load: starting processes, draining the pipeline, the checks.
    assert timeout_of(module, "test_nothing_is_lost_or_doubled_while_parts_are_killed") >= 300 * 2
    assert timeout_of(module, "test_desks_keep_posting_through_a_kafka_outage") >= 60 + 300
    short = load_ledger_module(monkeypatch, SANWU_LEDGER_SECONDS="30")
    assert timeout_of(short, "test_nothing_is_lost_or_doubled_while_parts_are_killed") >= 300
