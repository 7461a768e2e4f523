"""The ledger test on the three-node cluster (topics at replication factor 3 and
min.insync.replicas 2): desks keep posting while a Kafka node is killed with SIGKILL and
restarted, again and again for the length of the load; in one round the victims are brokers
that are not the active controller, in the other the active controller itself. The relay must
go on publishing while the node is dead, and afterwards no desk was answered with an error,
every accepted event counts exactly once, every status equals the reference model, and
reporting equals a rebuild.

SANWU_LEDGER_SECONDS and SANWU_LEDGER_SEED as in tests/faults/test_ledger.py."""

import asyncio
import json
import os
import random
from dataclasses import dataclass

import pytest

from shared import kafka
from shared.config import Settings
from tests.support.cluster import (
    kill_node,
    replicas,
    start_node,
    topic_config,
    victim,
    wait_fully_replicated,
)
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
    wait_drained,
)
from tests.support.processes import Supervisor, sanwu
from tests.support.stack import read_topic, stack_command

pytestmark = pytest.mark.cluster
REPLICATION_FACTOR = 3
MIN_INSYNC = "2"
# A node takes 15-30 s to start on a busy machine: 60 s of load leave room for one kill, its
# return and a full resynchronisation; a longer SANWU_LEDGER_SECONDS gives more kills.
LOAD_SECONDS = max(ledger_seconds(), 60)
# A killed broker is fenced after broker.session.timeout.ms (9 s): its partitions then have new
# leaders and in-sync replicas without it. The node stays down longer than that.
DOWN_SECONDS = (12.0, 18.0)


@dataclass(frozen=True)
class Kill:
    node: int
    published_while_down: int  # events the relay put on the topic while the node was dead
    seconds_down: float
    seconds_to_resync: float


async def published(settings: Settings) -> int:
    return sum((await kafka.end_offsets(settings, settings.events_topic)).values())


async def node_chaos(settings: Settings, *, kind: str, seconds: float, seed: int) -> list[Kill]:
    """Kill a node, bring it back and wait until every partition is in sync again, as long as
    the node's time down still falls within the load."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    topics = [settings.events_topic, settings.status_topic]
    kills: list[Kill] = []
    while True:
        await asyncio.sleep(rng.uniform(2, 5))
        node = await victim(kind, pick=rng.randrange(1 << 16))
        down_for = rng.uniform(*DOWN_SECONDS)
        if loop.time() + down_for > deadline:
            return kills
        before = await published(settings)
        killed_at = loop.time()
        await kill_node(node)
        await asyncio.sleep(down_for)
        while_down = await published(settings) - before
        await start_node(node)
        down = loop.time() - killed_at
        resync = await wait_fully_replicated(settings, topics)
        kills.append(Kill(node, while_down, round(down, 1), round(resync, 1)))


@pytest.mark.timeout(timeout_for(LOAD_SECONDS) + 300)
@pytest.mark.parametrize("kind", ["broker", "controller"])
async def test_nothing_is_lost_or_doubled_while_kafka_nodes_are_killed(
    kind: str,
    supervisor: tuple[Supervisor, str],
    isolated: Isolated,
    capsys: pytest.CaptureFixture[str],
) -> None:
    processes, base_url = supervisor
    settings = isolated.settings
    placed = await replicas(settings, [settings.events_topic, settings.status_topic])
    assert {total for total, _ in placed.values()} == {REPLICATION_FACTOR}
    assert await topic_config(settings, settings.events_topic, "min.insync.replicas") == MIN_INSYNC

    seed = int(os.environ.get("SANWU_LEDGER_SEED", random.randrange(1 << 30)))
    with capsys.disabled():
        print(f"\ncluster ledger ({kind}): {LOAD_SECONDS:g} s of load, seed {seed}")
    load = asyncio.create_task(
        run_load(
            base_url=base_url,
            key=isolated.desk_key,
            villages=demo_villages(),
            seconds=LOAD_SECONDS,
            workers=8,
            seed=seed,
        )
    )
    kills = await node_chaos(settings, kind=kind, seconds=LOAD_SECONDS, seed=seed)
    ledger = await load
    await stack_command("up")
    restarted = await asyncio.to_thread(processes.ensure_running)
    loop = asyncio.get_running_loop()
    drain_started = loop.time()
    await wait_drained(isolated.db)
    with capsys.disabled():
        print(
            f"cluster ledger ({kind}): seed {seed}; {kills}; restarted {restarted}; "
            f"{ledger.summary()}; drained {loop.time() - drain_started:.1f} s after the load"
        )

    assert kills, "no node was killed while the load ran"
    assert ledger.failed == {} and ledger.unknown == {}, ledger.summary()
    # Writes went on with a node dead: acks=all needs only min.insync.replicas of the three.
    assert all(kill.published_while_down > 0 for kill in kills), kills
    assert len(ledger.ok) > 50, ledger.summary()
    messages = await read_topic(settings, settings.events_topic, timeout=60)
    check_intake(ledger, await journal_ids(isolated.db), [json.loads(m[2]) for m in messages])
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
