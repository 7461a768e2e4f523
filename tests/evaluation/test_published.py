"""What evaluation publishes is what `shared.messages` parses, so producer and parser cannot
drift apart: the status and the indicators the live path published for real events, read back
from their topics, and the same stored rows as a rebuild has the database write them
(`status_json`, `indicator_json`), each accepted by the one parser of its type. (Warnings:
`test_warnings.py` reads every published warning, live and rebuilt, through its parser.)"""

from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from services.evaluation.live.repository.indicators import indicator_json
from services.evaluation.live.repository.statuses import status_json
from shared.config import Settings
from shared.consumer import Record, Rejected
from shared.db import Database
from shared.indicators import RatingCounts, UnitIndicators
from shared.messages import parse_unit_indicators, parse_unit_status
from shared.status import UnitStatus, status_key
from tests.evaluation.conftest import Evaluation
from tests.evaluation.helpers import Desk, Worlds, wait_applied
from tests.support import events
from tests.support.messages import parsed_from_topic, record_of
from tests.support.waiting import poll

Message = TypeVar("Message", UnitStatus, UnitIndicators)


async def published(
    settings: Settings,
    topic: str,
    parse: Callable[[Record], Message | Rejected],
    *,
    key: bytes,
    version: int,
) -> Message:
    """The message of this key and version on the topic, through `parse`; every message of
    the key must pass it."""

    async def arrived() -> list[Message]:
        messages = await parsed_from_topic(settings, topic, parse, keys={key})
        return [m for m in messages if m.version == version]

    [message] = await poll(
        arrived, timeout=20, interval=0.2, message=f"{key!r} v{version} on {topic}"
    )
    return message


async def as_the_database_writes_it(
    db: Database, *, table: str, message_sql: str, unit_code: str, period: str
) -> bytes:
    """The stored row's message as the rebuild's SQL writes it (`message_sql` over alias `n`)."""
    async with db.engine.connect() as connection:
        value = await connection.execute(
            sa.text(
                f"SELECT convert_to(({message_sql})::text, 'UTF8') FROM evaluation.{table} n "
                "WHERE n.unit_code = :unit AND n.period = :period"
            ),
            {"unit": unit_code, "period": period},
        )
        return bytes(value.scalar_one())


async def version_of(db: Database, *, table: str, unit_code: str, period: str) -> int:
    async with db.engine.connect() as connection:
        found = await connection.execute(
            sa.text(
                f"SELECT version FROM evaluation.{table} "
                "WHERE unit_code = :unit AND period = :period"
            ),
            {"unit": unit_code, "period": period},
        )
        return int(found.scalar_one())


async def test_a_status_published_live_and_as_rebuilt_is_what_the_parser_accepts(
    evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database
) -> None:
    world = worlds.township()
    visit = events.visit(world.village, destination="city", headcount=6, occurred_at=world.at())
    await wait_applied(db, await desk.post(visit))
    where = {"unit_code": world.township, "period": world.period}
    key = status_key(world.township, world.period)
    version = await version_of(db, table="status", **where)

    live = await published(
        evaluation.settings,
        evaluation.settings.status_topic,
        parse_unit_status,
        key=key,
        version=version,
    )
    rebuilt = parse_unit_status(
        record_of(
            key,
            await as_the_database_writes_it(
                db, table="status", message_sql=status_json("n"), **where
            ),
        )
    )

    assert isinstance(live, UnitStatus) and isinstance(rebuilt, UnitStatus)
    assert (live.unit_code, live.period, live.three_no) == (world.township, world.period, False)
    assert (live.counts.collective, live.people.collective) == (1, 6)
    assert live.counting_event_ids == [visit["event_id"]]
    assert rebuilt == live


async def test_indicators_published_live_and_as_rebuilt_are_what_the_parser_accepts(
    evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database
) -> None:
    world = worlds.township()
    meeting = events.meeting(world.village, occurred_at=world.at())
    rating = events.rating(world.village, "basically_satisfied", occurred_at=world.at())
    await wait_applied(db, await desk.post(meeting, rating))
    where = {"unit_code": world.village, "period": world.period}
    key = status_key(world.village, world.period)
    version = await version_of(db, table="indicators", **where)

    live = await published(
        evaluation.settings,
        evaluation.settings.indicator_topic,
        parse_unit_indicators,
        key=key,
        version=version,
    )
    rebuilt = parse_unit_indicators(
        record_of(
            key,
            await as_the_database_writes_it(
                db, table="indicators", message_sql=indicator_json("n"), **where
            ),
        )
    )

    assert isinstance(live, UnitIndicators) and isinstance(rebuilt, UnitIndicators)
    assert (live.unit_code, live.period) == (world.village, world.period)
    assert len(live.meetings_held) == 1
    assert live.all_ratings() == RatingCounts(basically_satisfied=1)
    assert rebuilt == live
