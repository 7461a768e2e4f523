"""The subtrees the service holds in memory to make proofs (services/audit/subtrees.py): every
proof made from what is held, plus the few subtrees read, equals the proof of the whole tree
(`merkle.Tree`, held to RFC 9162 by the vectors and the property tests), at every size the log
grows through; reads of many proofs at once are gathered, and a failed read fails each of
them. No database: the subtrees are read from a tree in memory."""

import asyncio
import random

import pytest

from services.audit import merkle
from services.audit.subtrees import GatheredReads, HeldSubtrees, MissingSubtrees, Spans

LEAVES = 2100


class Reads:
    """The log's subtrees as the database gives them, from a whole tree; counts statements."""

    def __init__(self, tree: merkle.Tree, *, size: int) -> None:
        self.tree = tree
        self.size = size  # the log's size: subtrees past it are not written yet
        self.statements = 0

    def written(self, node: merkle.Node) -> bool:
        level, position = node
        return (position + 1) << level <= self.size

    async def spans(self, spans: Spans) -> list[tuple[int, int, bytes]]:
        self.statements += 1
        return [
            (level, position, self.tree.nodes[level, position])
            for level, first, stop in spans
            for position in range(first, stop)
            if self.written((level, position))
        ]

    async def runs(self, spans: Spans, *, length: int = 7) -> list[tuple[int, int, bytes]]:
        """The same subtrees as the database gives them: runs of up to `length` hashes of a
        level, end to end, from the first position of each run."""
        runs: list[tuple[int, int, bytes]] = []
        for level, position, value in await self.spans(spans):
            if runs and runs[-1][0] == level and len(runs[-1][2]) < length * merkle.HASH_SIZE:
                run_level, first, hashes = runs[-1]
                if first + len(hashes) // merkle.HASH_SIZE == position:
                    runs[-1] = (run_level, first, hashes + value)
                    continue
            runs.append((level, position, value))
        return runs

    async def nodes(self, wanted: list[merkle.Node]) -> dict[merkle.Node, bytes]:
        self.statements += 1
        await asyncio.sleep(0)  # a round trip: other proofs go on meanwhile
        return {node: self.tree.nodes[node] for node in wanted if self.written(node)}


def tree() -> merkle.Tree:
    return merkle.Tree.of(f"leaf {i}".encode() for i in range(LEAVES))


async def proof_of(held: HeldSubtrees, reads: Reads, index: int, size: int) -> list[bytes]:
    await held.follow(size, read_spans=reads.spans, read_nodes=reads.nodes)
    to_read, hashes = held.inclusion(index, size)
    found = await reads.nodes(to_read)
    return [found[node] for node in to_read] + hashes


async def ranges_of(held: HeldSubtrees, reads: Reads, old: int, new: int) -> list[bytes]:
    """A consistency proof as the service makes one: held ranges, the rest read."""
    await held.follow(new, read_spans=reads.spans, read_nodes=reads.nodes)
    proof = []
    for span in merkle.consistency_ranges(old, new):
        value = held.range_hash(span, size=new)
        if value is None:
            nodes = merkle.complete_subtrees(*span)
            value = merkle.fold_nodes(nodes, await reads.nodes(nodes))
        proof.append(value)
    return proof


@pytest.mark.parametrize("lowest", [0, 3, 8])
async def test_proofs_from_held_subtrees_are_the_whole_trees_as_the_log_grows(
    lowest: int,
) -> None:
    whole = tree()
    rng = random.Random(lowest)
    held = HeldSubtrees(lowest=lowest)
    sizes = sorted({1, 2, 3, 255, 256, 257, 1024, LEAVES, *rng.sample(range(1, LEAVES), 40)})
    for size in sizes:
        reads = Reads(whole, size=size)
        for index in {0, size - 1, *(rng.randrange(size) for _ in range(20))}:
            assert await proof_of(held, reads, index, size) == whole.inclusion(index, size)
        for old in {1, size, *(rng.randint(1, size) for _ in range(10))}:
            assert await ranges_of(held, reads, old, size) == whole.consistency(old, size)
    # Sizes asked again after the log grew past them (a witness's older checkpoint).
    reads = Reads(whole, size=LEAVES)
    for size in sizes[:5]:
        for index in range(size):
            assert await proof_of(held, reads, index, size) == whole.inclusion(index, size)


async def test_subtrees_read_in_runs_make_the_whole_trees_proofs() -> None:
    whole = tree()
    held = HeldSubtrees(lowest=2)
    rng = random.Random(9162)
    for size in [5, 64, 1000, LEAVES]:
        reads = Reads(whole, size=size)
        await held.follow(size, read_spans=reads.runs, read_nodes=reads.nodes)
        for index in {0, size - 1, *(rng.randrange(size) for _ in range(30))}:
            assert await proof_of(held, reads, index, size) == whole.inclusion(index, size)


async def test_a_run_missing_a_subtree_inside_is_refused() -> None:
    whole = tree()
    held = HeldSubtrees(lowest=3)
    reads = Reads(whole, size=LEAVES)

    async def one_missing(spans: Spans) -> list[tuple[int, int, bytes]]:
        level, first, hashes = (await reads.runs(spans))[0]
        return [(level, first, hashes[: merkle.HASH_SIZE] + hashes[2 * merkle.HASH_SIZE :])]

    with pytest.raises(MissingSubtrees):
        await held.follow(LEAVES, read_spans=one_missing, read_nodes=reads.nodes)
    assert held.size == 0


async def test_a_proof_reads_only_its_own_path_below_the_held_levels() -> None:
    whole = tree()
    held = HeldSubtrees(lowest=4)
    reads = Reads(whole, size=LEAVES)
    await held.follow(LEAVES, read_spans=reads.spans, read_nodes=reads.nodes)
    to_read, _ = held.inclusion(777, LEAVES)
    assert to_read == [(level, (777 >> level) ^ 1) for level in range(4)]


async def test_a_log_missing_a_subtree_its_size_promises_is_refused() -> None:
    whole = tree()
    held = HeldSubtrees(lowest=3)
    reads = Reads(whole, size=500)  # the database says 500 leaves were written
    with pytest.raises(MissingSubtrees):
        await held.follow(900, read_spans=reads.spans, read_nodes=reads.nodes)
    assert held.size == 0  # nothing half-held


async def test_reads_of_proofs_made_at_once_are_gathered() -> None:
    whole = tree()
    reads = Reads(whole, size=LEAVES)
    gathered = GatheredReads(reads.nodes, at_once=1)
    wanted = [[(0, i), (1, i // 2)] for i in range(0, 60, 2)]
    found = await asyncio.gather(*(gathered.nodes(nodes) for nodes in wanted))
    for nodes, got in zip(wanted, found, strict=True):
        assert {node: got[node] for node in nodes} == {node: whole.nodes[node] for node in nodes}
    assert reads.statements < len(wanted) / 2


async def test_a_failed_read_fails_each_proof_gathered_and_not_the_next() -> None:
    calls = 0

    async def failing(wanted: list[merkle.Node]) -> dict[merkle.Node, bytes]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("the database went away")
        return dict.fromkeys(wanted, b"h" * 32)

    gathered = GatheredReads(failing, at_once=1)
    results = await asyncio.gather(
        *(gathered.nodes([(0, i)]) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await gathered.nodes([(0, 9)]) == {(0, 9): b"h" * 32}


async def test_a_proof_that_goes_away_does_not_cancel_the_others_read() -> None:
    whole = tree()
    reads = Reads(whole, size=LEAVES)
    gathered = GatheredReads(reads.nodes, at_once=1)
    leaving = asyncio.create_task(gathered.nodes([(0, 1)]))
    staying = asyncio.create_task(gathered.nodes([(0, 2)]))
    await asyncio.sleep(0)
    leaving.cancel()
    assert (await staying)[0, 2] == whole.nodes[0, 2]
