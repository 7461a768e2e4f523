"""The hashes of complete subtrees a proof is made of, kept in memory where every proof needs
them.

A complete subtree's hash never changes once its last leaf is appended (`merkle`), so what was
read once is right forever. Two kinds are held:

- the upper levels: every subtree of `UPPER_LEVEL` and up (one per 2^UPPER_LEVEL leaves and
  level: about 8 bytes per leaf of the log, 40 MB for 5,000,000 leaves), per level, contiguous
  from position 0 up to the largest size a proof asked for, read in runs of many hashes; the
  log grows only at its right edge, so following it reads only the subtrees completed since;
- the right edge of the last few sizes asked for: the subtrees a size decomposes into
  (`Frontier.nodes`) and the hash of every range from one of them to the end, which nearly
  every proof at that size names.

A proof then reads from the database only the subtrees below `UPPER_LEVEL` on its own path, at
most one per level, and the proofs being made at the same moment read theirs together
(`GatheredReads`): under load one statement serves many proofs. Profiled at 5,000,000 leaves
and 50 clients, reading every subtree of a proof by one statement of ~30 pairs, planned again
at each call, was most of a proof's cost in PostgreSQL and a third of it in the service; with
six levels read per proof (`UPPER_LEVEL` 6), the gathered statements were still about 40% of
the service's own work on a proof (beyond what /healthz costs), so three more levels are
held."""

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from services.audit.merkle import HASH_SIZE, Frontier, Node, Range, fold

UPPER_LEVEL = 3
EDGES_HELD = 8  # sizes whose right edge is held: the latest checkpoints'

# (level, first position, end position) of the subtrees wanted of each level
Spans = list[tuple[int, int, int]]
# (level, first position, the hashes of that subtree and the next ones of its level, end to end)
Runs = Sequence[tuple[int, int, bytes]]
ReadSpans = Callable[[Spans], Awaitable[Runs]]
ReadNodes = Callable[[list[Node]], Awaitable[dict[Node, bytes]]]


class MissingSubtrees(LookupError):
    """The log lacks a complete subtree its size promises."""


@dataclass(frozen=True)
class Edge:
    """The right edge of a size: the complete subtrees it decomposes into, largest first, and
    the hash of each range from the start of one of them to the end."""

    size: int
    starts: list[int]
    levels: list[int]
    hashes: list[bytes]
    to_end: list[bytes]  # to_end[i]: the range from starts[i] to the end

    @classmethod
    def of(cls, size: int, hashes: list[bytes]) -> "Edge":
        nodes = Frontier.nodes(size)
        starts = [position << level for level, position in nodes]
        to_end = [fold(hashes[i:]) for i in range(len(hashes))]
        return cls(size, starts, [level for level, _ in nodes], hashes, to_end)

    def range_hash(self, span: Range) -> bytes | None:
        start, end = span
        for i, first in enumerate(self.starts):
            if first == start:
                if end == self.size:
                    return self.to_end[i]
                return self.hashes[i] if end == start + (1 << self.levels[i]) else None
        return None


class HeldSubtrees:
    def __init__(self, *, lowest: int = UPPER_LEVEL) -> None:
        self.lowest = lowest
        self.size = 0  # every complete subtree of [0, size) at `lowest` and up is held
        # Level `lowest + i` at i, grown in place as the log grows (a copy of every level per
        # size followed would hold up the event loop for ms at millions of leaves); a hash is
        # read as a copy of its slice.
        self._levels: list[bytearray] = []
        self._edges: OrderedDict[int, Edge] = OrderedDict()
        self._following = asyncio.Lock()

    def inclusion(self, index: int, size: int) -> tuple[list[Node], list[bytes]]:
        """The inclusion proof of leaf `index` at `size` (which `follow` was given), RFC 9162
        2.1.3.1: the subtrees to read, which come first, and the hashes held, which follow.
        The leaf lies in one of the complete subtrees `size` decomposes into: its path inside
        that subtree, then the rest of the edge to its right, then the subtrees to its left."""
        edge = self._edges[size]
        which = 0
        while index >= edge.starts[which] + (1 << edge.levels[which]):
            which += 1
        height = edge.levels[which]
        below = min(height, self.lowest)
        to_read = [(level, (index >> level) ^ 1) for level in range(below)]
        held = []
        for level in range(below, height):
            first = ((index >> level) ^ 1) * HASH_SIZE
            held.append(bytes(self._levels[level - self.lowest][first : first + HASH_SIZE]))
        if which + 1 < len(edge.starts):
            held.append(edge.to_end[which + 1])
        held += reversed(edge.hashes[:which])
        return to_read, held

    def range_hash(self, span: Range, *, size: int) -> bytes | None:
        """The hash of a range of a proof at `size` (which `follow` was given) if held: an
        upper subtree, or a range of the right edge."""
        edge = self._edges.get(size)
        if edge is not None and (found := edge.range_hash(span)) is not None:
            return found
        start, end = span
        width = end - start
        if width & (width - 1) or start & (width - 1) or end > self.size:
            return None  # not one complete subtree, or not held yet
        level = width.bit_length() - 1
        return self._upper((level, start >> level)) if level >= self.lowest else None

    def _upper(self, node: Node) -> bytes:
        level, position = node
        first = position * HASH_SIZE
        return bytes(self._levels[level - self.lowest][first : first + HASH_SIZE])

    def spans(self, size: int) -> Spans:
        """The upper subtrees completed between the held size and `size`."""
        spans = []
        level = self.lowest
        while size >> level:
            held, wanted = self.size >> level, size >> level
            if wanted > held:
                spans.append((level, held, wanted))
            level += 1
        return spans

    async def follow(self, size: int, *, read_spans: ReadSpans, read_nodes: ReadNodes) -> None:
        """Hold the upper subtrees and the right edge of a log of `size` leaves, which the log
        holds; the readers give hashes from the database."""
        if size <= self.size and size in self._edges:
            self._edges.move_to_end(size)
            return
        async with self._following:
            if size > self.size:
                spans = self.spans(size)
                self._add(spans, await read_spans(spans))
                self.size = size
            if size not in self._edges:
                self._edges[size] = await self._edge(size, read_nodes)
                while len(self._edges) > EDGES_HELD:
                    self._edges.popitem(last=False)

    async def _edge(self, size: int, read_nodes: ReadNodes) -> Edge:
        nodes = Frontier.nodes(size)
        lower = [node for node in nodes if node[0] < self.lowest]
        found = await read_nodes(lower) if lower else {}
        if len(found) != len(lower):
            raise MissingSubtrees(f"the right edge of size {size} is incomplete")
        return Edge.of(size, [found.get(node) or self._upper(node) for node in nodes])

    def _add(self, spans: Spans, runs: Runs) -> None:
        expected = {level: start for level, start, _ in spans}
        ends = {level: end for level, _, end in spans}
        added = {level: bytearray() for level in expected}
        for level, position, run in runs:
            count, rest = divmod(len(run), HASH_SIZE)
            if expected.get(level) != position or rest or not count:
                raise MissingSubtrees(f"subtree ({level}, {position}) missing or out of order")
            added[level] += run
            expected[level] = position + count
        if expected != ends:
            raise MissingSubtrees("the log lacks complete subtrees its size promises")
        for level, hashes in added.items():
            while len(self._levels) <= level - self.lowest:
                self._levels.append(bytearray())
            self._levels[level - self.lowest] += hashes


class GatheredReads:
    """The subtrees proofs read from the database, gathered: the proofs being made at the same
    moment read theirs in one statement, and while `at_once` statements are out the next one
    gathers whatever proofs wait meanwhile. Under load one round trip serves many proofs; alone,
    a proof waits for nothing."""

    def __init__(self, read: ReadNodes, *, at_once: int = 1) -> None:
        self._read = read
        self._out = asyncio.Semaphore(at_once)
        self._gathering: tuple[set[Node], list[asyncio.Future[dict[Node, bytes]]]] | None = None
        self._reading: set[asyncio.Task[None]] = set()

    async def nodes(self, wanted: Iterable[Node]) -> dict[Node, bytes]:
        """The hashes of these subtrees (and of others gathered with them)."""
        if self._gathering is None:
            self._gathering = (set(), [])
            reading = asyncio.create_task(self._read_gathered())
            self._reading.add(reading)
            reading.add_done_callback(self._reading.discard)
        nodes, waiting = self._gathering
        nodes.update(wanted)
        # A future of its own: a request that goes away cancels its wait, not the others' read,
        # and the answer wakes it at once (a shield around a shared one takes a turn more of a
        # busy event loop).
        answer = asyncio.get_running_loop().create_future()
        waiting.append(answer)
        return await answer

    async def _read_gathered(self) -> None:
        async with self._out:
            assert self._gathering is not None
            nodes, waiting = self._gathering
            self._gathering = None  # from here, proofs gather for the next statement
            try:
                found = await self._read(list(nodes))
            except asyncio.CancelledError:
                for answer in waiting:
                    answer.cancel()
                raise
            except Exception as exc:
                for answer in waiting:
                    if not answer.done():
                        answer.set_exception(exc)
            else:
                for answer in waiting:
                    if not answer.done():
                        answer.set_result(found)
