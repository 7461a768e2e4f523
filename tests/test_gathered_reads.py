"""Single-key reads asked at the same moment are read together, each caller getting its own
key's value, and no more reads run at once than allowed."""

import asyncio

import pytest

from shared.gathered_reads import GatheredReads


class Store:
    """Reads that wait until released, recording the keys of each."""

    def __init__(self) -> None:
        self.reads: list[list[str]] = []
        self.running = 0
        self.most_at_once = 0
        self.release = asyncio.Event()
        self.fail_next = False

    async def read(self, keys: list[str]) -> dict[str, str]:
        self.reads.append(keys)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await self.release.wait()
            if self.fail_next:
                self.fail_next = False
                raise RuntimeError("the database went away")
            return {key: key.upper() for key in keys}
        finally:
            self.running -= 1


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_keys_asked_while_a_read_runs_are_read_together_by_the_next() -> None:
    store = Store()
    reads = GatheredReads(store.read, reads=1, max_keys=100)
    first = asyncio.create_task(reads.get("a"))
    await settle()
    later = [asyncio.create_task(reads.get(key)) for key in ("b", "c", "d")]
    await settle()
    store.release.set()
    assert await first == "A"
    assert [await task for task in later] == ["B", "C", "D"]
    assert store.reads == [["a"], ["b", "c", "d"]]


async def test_a_key_asked_twice_before_its_read_is_read_once() -> None:
    store = Store()
    reads = GatheredReads(store.read, reads=1, max_keys=100)
    busy = asyncio.create_task(reads.get("x"))
    await settle()
    twice = [asyncio.create_task(reads.get("k")) for _ in range(2)]
    await settle()
    store.release.set()
    await busy
    assert [await task for task in twice] == ["K", "K"]
    assert store.reads == [["x"], ["k"]]


async def test_no_more_reads_run_at_once_than_allowed_and_a_read_takes_at_most_max_keys() -> None:
    store = Store()
    reads = GatheredReads(store.read, reads=2, max_keys=3)
    tasks = [asyncio.create_task(reads.get(str(n))) for n in range(10)]
    await settle()
    store.release.set()
    assert await asyncio.gather(*tasks) == [str(n) for n in range(10)]
    assert store.most_at_once == 2
    assert max(len(keys) for keys in store.reads) == 3
    assert sorted(key for keys in store.reads for key in keys) == sorted(map(str, range(10)))


async def test_a_failed_read_fails_its_callers_only_and_the_next_read_is_done() -> None:
    store = Store()
    store.fail_next = True
    reads = GatheredReads(store.read, reads=1, max_keys=100)
    failing = asyncio.create_task(reads.get("a"))
    await settle()
    following = asyncio.create_task(reads.get("b"))
    store.release.set()
    with pytest.raises(RuntimeError, match="went away"):
        await failing
    assert await following == "B"


async def test_a_caller_that_goes_away_does_not_cancel_the_read_others_wait_for() -> None:
    store = Store()
    reads = GatheredReads(store.read, reads=1, max_keys=100)
    busy = asyncio.create_task(reads.get("x"))
    await settle()
    leaving = asyncio.create_task(reads.get("k"))
    staying = asyncio.create_task(reads.get("k"))
    await settle()
    leaving.cancel()
    store.release.set()
    await busy
    assert await staying == "K"
    assert leaving.cancelled()
