"""The three-node Kafka cluster of `make test-cluster`: where its topics' replicas are, and its
nodes killed and restarted through deploy/stack.sh."""

import asyncio

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared import kafka
from shared.config import Settings
from tests.support.stack import BROKERS, kafka_leader, stack_command

OFFSETS_TOPIC = "__consumer_offsets"


async def replicas(settings: Settings, topics: list[str]) -> dict[tuple[str, int], tuple[int, int]]:
    """(replicas, in-sync replicas) per (topic, partition)."""
    client = kafka.admin(settings)
    await client.start()
    try:
        described = await client.describe_topics(topics)
    finally:
        await client.close()
    return {
        (topic["topic"], partition["partition"]): (
            len(partition["replicas"]),
            len(partition["isr"]),
        )
        for topic in described
        for partition in topic["partitions"]
    }


async def topic_config(settings: Settings, topic: str, name: str) -> str | None:
    client = kafka.admin(settings)
    await client.start()
    try:
        [response] = await client.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
    finally:
        await client.close()
    entries = response.to_object()["resources"][0]["config_entries"]
    return next((e["config_value"] for e in entries if e["config_names"] == name), None)


async def wait_fully_replicated(
    settings: Settings, topics: list[str], *, timeout: float = 120
) -> float:
    """Until every partition of the topics (and of the group offsets) has all its replicas in
    sync again; returns how long that took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        try:
            counts = await replicas(settings, [*topics, OFFSETS_TOPIC])
        except Exception:  # a broker coming back may refuse metadata for a moment
            counts = {}
        if counts and all(total == in_sync for total, in_sync in counts.values()):
            return loop.time() - started
        if loop.time() - started > timeout:
            lagging = {tp: c for tp, c in counts.items() if c[0] != c[1]}
            raise TimeoutError(f"still under-replicated after {timeout:g} s: {lagging}")
        await asyncio.sleep(0.5)


async def victim(kind: str, *, pick: int) -> int:
    """The node to kill: the active controller, or a broker that is not it (`pick` chooses
    among those)."""
    leader = await kafka_leader()
    if kind == "controller":
        return leader
    others = [node for node in range(1, BROKERS + 1) if node != leader]
    return others[pick % len(others)]


async def kill_node(node: int) -> None:
    await stack_command("kafka-node-kill", str(node))


async def start_node(node: int) -> None:
    await stack_command("kafka-node-start", str(node))
