"""Tests that stop or kill parts of the stack refuse the default one (which `make run` may be
using) and run on a stack of their own (`make test-faults`: .stack-faults, other ports)."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests import conftest
from tests.support import stack

OWN = {
    "BASE_DSN": "postgresql://sanwu@127.0.0.1:26432/postgres",
    "KAFKA_BOOTSTRAP": "127.0.0.1:30092",
    "STACK_DIR": stack.ROOT / ".stack-faults",
}


def on(monkeypatch: pytest.MonkeyPatch, **changes: object) -> None:
    monkeypatch.setenv("SANWU_KAFKA_CONTROLLER_PORT", "30093")
    for name, value in (OWN | changes).items():
        monkeypatch.setattr(stack, name, value)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"BASE_DSN": "postgresql://sanwu@127.0.0.1:25432/postgres"}, "PostgreSQL on port 25432"),
        ({"KAFKA_BOOTSTRAP": "127.0.0.1:30092,127.0.0.1:29092"}, "Kafka on port 29092"),
        ({"STACK_DIR": stack.ROOT / ".stack"}, ".stack is the default stack's directory"),
    ],
    ids=["postgresql", "kafka", "directory"],
)
def test_the_default_stack_is_recognised_by_any_of_its_parts(
    monkeypatch: pytest.MonkeyPatch, changes: dict[str, object], named: str
) -> None:
    on(monkeypatch, **changes)

    reason = stack.default_stack_in_use()

    assert reason is not None and named in reason


def test_a_stack_of_its_own_is_not_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    on(monkeypatch)

    assert stack.default_stack_in_use() is None


def item(*markers: str) -> SimpleNamespace:
    return SimpleNamespace(get_closest_marker=lambda name: name if name in markers else None)


@pytest.mark.parametrize("marker", ["faults", "cluster"])
def test_a_destructive_test_is_skipped_on_the_default_stack_saying_why(
    monkeypatch: pytest.MonkeyPatch, marker: str
) -> None:
    on(monkeypatch, STACK_DIR=Path(stack.ROOT / ".stack"))

    with pytest.raises(pytest.skip.Exception, match="make test-faults"):
        conftest.pytest_runtest_setup(item(marker))  # type: ignore[arg-type]


def test_other_tests_and_a_stack_of_its_own_run(monkeypatch: pytest.MonkeyPatch) -> None:
    on(monkeypatch, STACK_DIR=Path(stack.ROOT / ".stack"))
    conftest.pytest_runtest_setup(item("slow"))  # type: ignore[arg-type]

    on(monkeypatch)
    conftest.pytest_runtest_setup(item("faults"))  # type: ignore[arg-type]
