"""The ledger test: desks keep posting (new events, repeats, corrections) while the relay, the
evaluation consumer, the reporting consumer, Kafka and PostgreSQL are killed and restarted at
random; part of the corrections come from a township's desk, many outside its scope. Afterwards
every event the service said it accepted counts exactly once, an unanswered one at most once, a
refused one never; every status equals what a small reference model computes from the accepted
events (with their acceptance times and their senders' scopes); and the reporting read model
equals a rebuild from scratch.

SANWU_LEDGER_SECONDS sets how long the load runs (default 30; `make test-faults-long` runs 300),
SANWU_LEDGER_SEED its seed (printed before the run). Each test's timeout follows the length of
its load.
"""

import asyncio
import json
import os
import random
from collections import Counter

import pytest

from shared.config import Settings
from tests.conftest import TOWNSHIP
from tests.support.ledger import ledger_seconds, run_load, timeout_for
from tests.support.ledger_checks import (
    Isolated,
    accepted_in_order,
    check_intake,
    check_statuses,
    demo_villages,
    evaluation_statuses,
    expected_statuses,
    journal_ids,
    reporting_statuses,
    scalar,
    wait_drained,
)
from tests.support.processes import Supervisor, sanwu
from tests.support.stack import ROOT, read_topic

pytestmark = pytest.mark.faults
STACK = str(ROOT / "deploy" / "stack.sh")
SECONDS = ledger_seconds()
WORKERS = ("relay", "evaluation", "reporting")


async def stack_command(command: str) -> None:
    process = await asyncio.create_subprocess_exec(STACK, command)
    await process.wait()


async def chaos(supervisor: Supervisor, *, seconds: float, seed: int) -> list[str]:
    """Kill something every few seconds and bring it back; returns what was done."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    done = []
    while loop.time() < deadline - 3:
        await asyncio.sleep(rng.uniform(1.5, 4))
        target = rng.choice([*WORKERS, "kafka", "postgres"])
        done.append(target)
        if target in WORKERS:
            supervisor.kill(target)
            await asyncio.sleep(rng.uniform(0.2, 2))
            await asyncio.to_thread(supervisor.start, target)
        elif target == "kafka":
            await stack_command("kafka-kill")
            await asyncio.sleep(rng.uniform(1, 4))
            await stack_command("kafka-start")
        else:
            await stack_command("pg-kill")
            await asyncio.sleep(rng.uniform(0.5, 3))
            await stack_command("pg-start")
    return done


async def broker_answers(settings: Settings) -> bool:
    """Whether anything accepts a connection on the broker's port."""
    host, port = settings.kafka_bootstrap_servers.split(",")[0].rsplit(":", 1)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 3)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


@pytest.mark.timeout(timeout_for(SECONDS))
async def test_nothing_is_lost_or_doubled_while_parts_are_killed(
    supervisor: tuple[Supervisor, str], isolated: Isolated, capsys: pytest.CaptureFixture[str]
) -> None:
    processes, base_url = supervisor
    seed = int(os.environ.get("SANWU_LEDGER_SEED", random.randrange(1 << 30)))
    with capsys.disabled():  # shown at once, so a run cut short can still be repeated
        print(f"\nledger: {SECONDS:g} s of load, seed {seed} (SANWU_LEDGER_SEED={seed} repeats it)")
    load = asyncio.create_task(
        run_load(
            base_url=base_url,
            key=isolated.desk_key,
            villages=demo_villages(),
            seconds=SECONDS,
            workers=8,
            seed=seed,
            narrower_key=(isolated.township_key, TOWNSHIP[:9]),
        )
    )
    faults = await chaos(processes, seconds=SECONDS, seed=seed)
    ledger = await load
    await stack_command("up")
    restarted = await asyncio.to_thread(processes.ensure_running)
    with capsys.disabled():
        print(
            f"ledger: seed {seed}; {len(faults)} faults {dict(Counter(faults))}; "
            f"restarted {restarted}; {ledger.summary()}"
        )

    await wait_drained(isolated.db)
    messages = await read_topic(isolated.settings, isolated.settings.events_topic, timeout=60)
    on_topic = [json.loads(value) for _, _, value, _ in messages]

    assert len(ledger.ok) > 50, ledger.summary()
    check_intake(ledger, await journal_ids(isolated.db), on_topic)
    evaluated = await evaluation_statuses(isolated.db)
    check_statuses(expected_statuses(await accepted_in_order(isolated.db)), evaluated)
    assert any(not figures[0] for figures in evaluated.values()), "the load marked no unit"

    read_model = await reporting_statuses(isolated.db)
    assert {k: (v[0], *v[2:]) for k, v in read_model.items()} == {
        k: (v[0], *v[1], *v[2], v[3]) for k, v in evaluated.items()
    }
    rebuild = await asyncio.create_subprocess_exec(
        *sanwu("reporting", "rebuild"), env=os.environ | isolated.stack.env()
    )
    assert await rebuild.wait() == 0
    assert await reporting_statuses(isolated.db) == read_model


OUTAGE_SECONDS = float(os.environ.get("SANWU_KAFKA_OUTAGE_SECONDS", "15"))


@pytest.mark.timeout(timeout_for(OUTAGE_SECONDS))
async def test_desks_keep_posting_through_a_kafka_outage(
    supervisor: tuple[Supervisor, str], isolated: Isolated
) -> None:
    """Kafka down (SANWU_KAFKA_OUTAGE_SECONDS, 15 by default, 60 in `make test-faults-long`):
    every post is still answered at once, and all of it reaches the statuses afterwards."""
    _, base_url = supervisor
    await stack_command("kafka-stop")
    try:
        assert not await broker_answers(isolated.settings), "Kafka is still up"
        ledger = await run_load(
            base_url=base_url,
            key=isolated.desk_key,
            villages=demo_villages(),
            seconds=OUTAGE_SECONDS,
            workers=4,
            seed=11,
        )
        # Nothing accepted could leave intake: the outage was real all along.
        assert not await broker_answers(isolated.settings), "Kafka came back during the load"
        assert await scalar(isolated.db, "SELECT count(*) FROM intake.outbox") == len(ledger.ok)
    finally:
        await stack_command("kafka-start")

    assert ledger.failed == {} and ledger.unknown == {}, ledger.summary()
    assert ledger.slowest < 1.0, f"a desk waited {ledger.slowest:.2f} s"
    await wait_drained(isolated.db)
    check_statuses(
        expected_statuses(await accepted_in_order(isolated.db)),
        await evaluation_statuses(isolated.db),
    )
