"""How a rebuild shares its work out (services/evaluation/rebuild): the topic's partitions
among reader processes, PostgreSQL's workers for the index builds, and reader processes that
end with the rebuild however it ends."""

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from services.evaluation.config import EvaluationSettings
from services.evaluation.rebuild.readers import shares_of
from services.evaluation.rebuild.repository import RebuildRepository, rebuild_connection
from services.evaluation.rebuild.run import index_workers
from tests.evaluation.conftest import Evaluation
from tests.support.stack import ROOT


def test_partitions_are_shared_out_by_their_messages_and_no_share_is_empty() -> None:
    ends = {TopicPartition("t", p): size for p, size in enumerate([900, 100, 500, 500, 0, 300])}

    shares = shares_of(ends, 2)

    assert sorted(sum(share.values()) for share in shares) == [1100, 1200]
    assert sorted(tp.partition for share in shares for tp in share) == [0, 1, 2, 3, 4, 5]
    assert all(ends[tp] == end for share in shares for tp, end in share.items())
    assert len(shares_of(ends, 64)) == 6  # at most one share per partition
    assert shares_of(ends, 1) == [ends]
    assert shares_of({}, 2) == []


def test_index_builds_leave_a_core_to_the_warnings_when_postgresql_shares_the_machine() -> None:
    local = EvaluationSettings(database_url="postgresql+asyncpg://sanwu@127.0.0.1:5432/sanwu")
    remote = EvaluationSettings(database_url="postgresql+asyncpg://sanwu@db.internal:5432/sanwu")

    assert index_workers(local, cores=2) == 0
    assert index_workers(local, cores=8) == 6
    assert index_workers(remote, cores=2) is None  # the server's own setting
    chosen = local.model_copy(update={"rebuild_index_workers": 3})
    assert index_workers(chosen, cores=2) == 3


async def test_index_workers_are_never_set_above_the_servers_own(
    evaluation: Evaluation,
) -> None:
    connection = await rebuild_connection(evaluation.settings)
    try:
        allowed = int(await connection.fetchval("SHOW max_parallel_maintenance_workers"))
        repository = RebuildRepository(connection, schema="evaluation_rebuild")

        await repository.limit_index_workers(allowed + 5)
        assert await connection.fetchval("SHOW max_parallel_maintenance_workers") == str(allowed)
        await repository.limit_index_workers(0)
        assert await connection.fetchval("SHOW max_parallel_maintenance_workers") == "0"
    finally:
        await connection.close()


READERS_FOREVER = """
import asyncio
from aiokafka import TopicPartition
from services.evaluation.rebuild.readers import read_in_processes

async def forever(share, tell):
    await asyncio.sleep(3600)

shares = [{TopicPartition("t", 0): 1}, {TopicPartition("t", 1): 1}]
asyncio.run(read_in_processes(shares, forever, on_read=lambda read: None))
"""


def children_of(pid: int) -> list[int]:
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
async def test_readers_end_when_the_rebuild_is_killed() -> None:
    rebuild_process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", READERS_FOREVER, cwd=ROOT
    )
    readers: list[int] = []
    try:
        for _ in range(100):
            readers = children_of(rebuild_process.pid)
            if len(readers) == 2:
                break
            await asyncio.sleep(0.1)
        assert len(readers) == 2, "the reader processes did not start"

        rebuild_process.kill()
        await rebuild_process.wait()

        for _ in range(50):
            if not any(map(running, readers)):
                break
            await asyncio.sleep(0.1)
        assert not any(map(running, readers)), "readers outlived the rebuild"
    finally:
        if rebuild_process.returncode is None:
            rebuild_process.kill()
            await rebuild_process.wait()
        for reader in filter(running, readers):
            os.kill(reader, signal.SIGKILL)  # only if they outlived it
