"""Checking a versioned message read from a topic, one way for every consumer: a tombstone, a
value that does not validate or a message with problems becomes a `Rejected` (dead-lettered by
`shared.consumer`) with its reason."""

import re
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from shared.consumer import Record, Rejected, summary_of
from shared.indicators import UnitIndicators

Message = TypeVar("Message", bound=BaseModel)

CODE = re.compile(r"^[0-9]{12}$")
PERIOD = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_COUNT = 1_000_000_000  # the most any count in a message may be


def decode(
    record: Record,
    model: type[Message],
    *,
    what: str,
    tombstone: str,
    problems: Callable[[Message, bytes | None], list[str]],
) -> Message | Rejected:
    """`what` names the model in a reason ("a unit status"); `tombstone` says why a record
    without a value is refused."""
    if record.value is None:
        return Rejected(f"no value (a tombstone); {tombstone}")
    try:
        message = model.model_validate_json(record.value)
    except ValidationError as exc:
        return Rejected(f"not {what}: {summary_of(exc)}")
    found = problems(message, record.key)
    return Rejected("; ".join(found)) if found else message


def identity_problems(
    *,
    key: bytes | None,
    expected_key: bytes,
    key_is: str = "unit_code:period",
    schema_version: int,
    unit_code: str,
    period: str | None = None,
    version: int | None = None,
) -> list[str]:
    """The problems of a message's key, schema version, unit code, period and version (those
    given)."""
    problems = []
    if key != expected_key:
        problems.append(f"key {key!r} is not {key_is} ({expected_key!r})")
    if schema_version != 1:
        problems.append(f"schema_version {schema_version} is not understood")
    if not CODE.match(unit_code):
        problems.append("unit_code is not 12 digits")
    if period is not None and not PERIOD.match(period):
        problems.append("period is not a period id")
    if version is not None and version < 1:
        problems.append("version must be 1 or more")
    return problems


def indicator_problems(message: UnitIndicators, key: bytes | None) -> list[str]:
    """What is wrong with an indicator message: its identity, its counts, its time."""
    problems = identity_problems(
        key=key,
        expected_key=message.key,
        schema_version=message.schema_version,
        unit_code=message.unit_code,
        period=message.period,
        version=message.version,
    )
    counts = [n for c in message.ratings.values() for n in c.model_dump().values()]
    if any(not 0 <= n <= MAX_COUNT for n in counts):
        problems.append(f"rating counts must lie within 0..{MAX_COUNT}")
    if message.changed_at.utcoffset() is None:
        problems.append("changed_at has no offset")
    return problems
