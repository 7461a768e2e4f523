"""The log's use cases: appending leaves exactly once, signing checkpoints, and what readers
ask of it (the latest checkpoint, entries, a record's leaf, inclusion and consistency proofs).

Appending and signing take the head row's lock, so the log has one writer at a time whichever
process appends (the consumers, the key operations' drain, `sanwu audit checkpoint`). A leaf
whose (kind, id) the log holds is not appended again: a record delivered twice, replayed from
the start of its topic or drained twice leaves the log as it was."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.audit import merkle
from services.audit.checkpoints import Checkpoint, PublicKey, Signer
from services.audit.leaves import Leaf
from services.audit.repository import CheckpointsRepository, LogRepository, StoredLeaf
from services.audit.repository.log import PAIRS
from services.audit.subtrees import GatheredReads, HeldSubtrees, Spans
from shared.db import Database
from shared.errors import DomainError, InvalidInput, NotFound

Clock = Callable[[], datetime]
MAX_ENTRIES = 1000


class LeafNotFound(NotFound):
    title = "Not in the log"
    slug = "leaf-not-found"


class NoCheckpoint(DomainError):
    status = 503
    title = "No checkpoint yet"
    slug = "no-checkpoint"


@dataclass(frozen=True, slots=True)
class Appended:
    appended: int  # new leaves
    ignored: int  # leaves the log held already (or twice in the batch)
    size: int  # the log's size after the append

    @property
    def applied(self) -> int:
        return self.appended


async def frontier_of(log: LogRepository, size: int) -> merkle.Frontier:
    wanted = merkle.Frontier.nodes(size)
    found = await log.nodes(wanted)
    return merkle.Frontier(size, [found[node] for node in wanted])


async def append(log: LogRepository, leaves: Sequence[Leaf], *, at: datetime) -> Appended:
    """Append the leaves the log does not hold yet, in order, in the caller's transaction.
    They are added as new first, as they nearly always are; only when the log holds one of
    them (a batch read again) does it look up which, and add the others."""
    size = await log.lock()
    first: dict[tuple[str, str], Leaf] = {}
    for leaf in leaves:
        first.setdefault((leaf.kind.value, leaf.record_id), leaf)
    new = list(first.values())
    if not await log.add_new_leaves(size, _rows(new), at=at):
        held = await log.existing(list(first))
        new = [leaf for identity, leaf in first.items() if identity not in held]
        if not new:
            return Appended(0, len(leaves), size)
        await log.add_leaves(size, _rows(new), at=at)
    frontier = await frontier_of(log, size)
    made: list[tuple[int, int, bytes]] = []
    for leaf in new:
        made += frontier.append(merkle.leaf_hash(leaf.body))
    await log.add_nodes(made)
    await log.set_size(frontier.size)
    return Appended(len(new), len(leaves) - len(new), frontier.size)


def _rows(leaves: Sequence[Leaf]) -> list[tuple[str, str, str]]:
    return [(leaf.kind.value, leaf.record_id, leaf.text) for leaf in leaves]


@dataclass(frozen=True, slots=True)
class Proof:
    hashes: list[bytes]


class AuditLog:
    def __init__(self, *, db: Database, signer: Signer, clock: Clock) -> None:
        self.db = db
        self.signer = signer
        self.clock = clock
        self._held = 0  # the largest size the log was seen to have
        self.subtrees = HeldSubtrees()
        self.lower = GatheredReads(self._nodes)

    @property
    def public_key(self) -> PublicKey:
        return self.signer.public_key

    async def sign(self, *, unless_unchanged: bool = True) -> Checkpoint:
        """A checkpoint of the log as it is, signed and kept; with `unless_unchanged`, the
        latest one when the log has not grown since."""
        async with self.db.session() as session:
            log = await LogRepository.from_session(session)
            checkpoints = CheckpointsRepository(log.connection, session=session)
            size = await log.lock()
            latest = await checkpoints.latest()
            if unless_unchanged and latest is not None and latest.size == size:
                return latest
            frontier = await frontier_of(log, size)
            signed = self.signer.sign(size=size, root_hash=frontier.root(), time=self.clock())
            await checkpoints.add(signed)
            return signed

    async def checkpoint(self) -> Checkpoint:
        async with self.db.connection() as connection:
            latest = await CheckpointsRepository(connection).latest()
        if latest is None:
            raise NoCheckpoint("the log has signed no checkpoint yet; try again in a second")
        return latest

    async def entries(self, start: int, end: int) -> list[StoredLeaf]:
        if end <= start:
            raise _invalid("end", f"end must be above start ({start})")
        if end - start > MAX_ENTRIES:
            raise _invalid("end", f"at most {MAX_ENTRIES} entries at once")
        async with self.db.connection() as connection:
            return await LogRepository(connection).entries(start, end)

    async def index_of(self, kind: str, record_id: str) -> int:
        async with self.db.connection() as connection:
            index = await LogRepository(connection).index_of(kind, record_id)
        if index is None:
            raise LeafNotFound(f"the log holds no {kind} {record_id} (yet)")
        return index

    async def inclusion(self, index: int, size: int) -> Proof:
        if index >= size:
            raise _invalid("index", f"leaf {index} is not in a tree of {size} leaves")
        await self._follow("size", size)
        to_read, held = self.subtrees.inclusion(index, size)
        found = await self.lower.nodes(to_read) if to_read else {}
        return Proof([found[node] for node in to_read] + held)

    async def consistency(self, old: int, new: int) -> Proof:
        if old > new:
            raise _invalid("from", f"from ({old}) must not be above to ({new})")
        return await self._proof("to", new, merkle.consistency_ranges(old, new))

    async def _proof(self, field: str, size: int, ranges: list[merkle.Range]) -> Proof:
        await self._follow(field, size)
        held = [self.subtrees.range_hash(span, size=size) for span in ranges]
        # The rest from the database: the subtrees below the upper levels.
        lower = {
            span: merkle.complete_subtrees(*span)
            for span, value in zip(ranges, held, strict=True)
            if value is None
        }
        wanted = {node for nodes in lower.values() for node in nodes}
        found = await self.lower.nodes(wanted) if wanted else {}
        return Proof(
            [
                merkle.fold_nodes(lower[span], found) if value is None else value
                for span, value in zip(ranges, held, strict=True)
            ]
        )

    async def _follow(self, field: str, size: int) -> None:
        """The log's upper subtrees and right edge held for a proof at `size`; `size` above the
        log's is refused, naming `field`."""
        # A log only grows: a size seen once needs no look-up again.
        if size > self._held:
            async with self.db.connection() as connection:
                self._held = max(self._held, await LogRepository(connection).size())
            if size > self._held:
                raise _invalid(field, f"{field} ({size}) is above the log's size ({self._held})")
        await self.subtrees.follow(size, read_spans=self._spans, read_nodes=self._nodes)

    async def _spans(self, spans: Spans) -> list[tuple[int, int, bytes]]:
        async with self.db.connection() as connection:
            return await LogRepository(connection).spans(spans)

    async def _nodes(self, wanted: list[merkle.Node]) -> dict[merkle.Node, bytes]:
        if not wanted:
            return {}
        async with self.db.connection() as connection:
            log = LogRepository(connection)
            if len(wanted) <= PAIRS:
                return await log.few_nodes(wanted)
            return dict(zip(wanted, await log.hashes(wanted), strict=True))


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, errors=[{"field": field, "message": message, "type": "value"}])
