"""The log's leaves, the hashes of its complete subtrees and its size. Appending takes the
head row's lock for the transaction: one appender at a time, whatever process it runs in."""

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.audit.merkle import HASH_SIZE, Node
from services.audit.models import head, leaf, node
from shared.repository import Repository

LOCK_SQL = f"SELECT size FROM {head.fullname} WHERE one_row FOR UPDATE"
SIZE_SQL = f"SELECT size FROM {head.fullname} WHERE one_row"
SET_SIZE_SQL = f"UPDATE {head.fullname} SET size = $1 WHERE one_row"
EXISTING_SQL = f"""
    SELECT kind, record_id FROM {leaf.fullname}
    WHERE (kind, record_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""
NODES_SQL = f"""
    SELECT level, position, hash FROM {node.fullname}
    WHERE (level, position) IN (SELECT * FROM unnest($1::smallint[], $2::bigint[]))
"""
# Many proofs' subtrees at once: their hashes end to end, in the order asked.
HASHES_SQL = f"""
    SELECT string_agg(n.hash, ''::bytea ORDER BY w.place)
    FROM unnest($1::smallint[], $2::bigint[]) WITH ORDINALITY AS w(level, position, place)
    JOIN {node.fullname} n USING (level, position)
"""
ADD_LEAVES_SQL = f"""
    INSERT INTO {leaf.fullname} (leaf_index, kind, record_id, body, appended_at)
    SELECT u.leaf_index, u.kind, u.record_id, u.body, $5
    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])
         AS u(leaf_index, kind, record_id, body)
"""
ADD_NODES_SQL = f"""
    INSERT INTO {node.fullname} (level, position, hash)
    SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])
"""
# A proof's few subtrees, by a statement of as many pairs (at most PAIRS): one plan per count
# and connection, where an array of pairs would be planned again at every call.
PAIRS = 8


def _pairs_sql(count: int) -> str:
    pairs = ", ".join(f"(${2 * i + 1}::smallint, ${2 * i + 2}::bigint)" for i in range(count))
    return f"""
    SELECT n.level, n.position, n.hash
    FROM (VALUES {pairs}) AS v(level, position) JOIN {node.fullname} n USING (level, position)
"""


PAIRS_SQL = {count: _pairs_sql(count) for count in range(1, PAIRS + 1)}
SPANS_SQL = f"""
    SELECT n.level, n.position, n.hash
    FROM unnest($1::smallint[], $2::bigint[], $3::bigint[]) AS s(level, first, stop)
    JOIN {node.fullname} n ON n.level = s.level AND n.position >= s.first AND n.position < s.stop
    ORDER BY n.level, n.position
"""
ENTRIES_SQL = f"""
    SELECT leaf_index, kind, record_id, body FROM {leaf.fullname}
    WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY leaf_index
"""
INDEX_SQL = f"SELECT leaf_index FROM {leaf.fullname} WHERE kind = $1 AND record_id = $2"


@dataclass(frozen=True, slots=True)
class StoredLeaf:
    index: int
    kind: str
    record_id: str
    body: str


class LogRepository(Repository):
    async def lock(self) -> int:
        """The log's size, locked until the transaction ends."""
        size: int = await self.connection.fetchval(LOCK_SQL)
        return size

    async def size(self) -> int:
        size: int = await self.connection.fetchval(SIZE_SQL)
        return size

    async def set_size(self, size: int) -> None:
        await self.connection.execute(SET_SIZE_SQL, size)

    async def existing(self, identities: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (kind, record id) the log holds already."""
        if not identities:
            return set()
        kinds, ids = zip(*identities, strict=True)
        rows = await self.connection.fetch(EXISTING_SQL, list(kinds), list(ids))
        return {(r["kind"], r["record_id"]) for r in rows}

    async def nodes(self, wanted: Iterable[Node]) -> dict[Node, bytes]:
        """The hashes of these complete subtrees (those the log has)."""
        levels, positions = [], []
        for level, position in wanted:
            levels.append(level)
            positions.append(position)
        if not levels:
            return {}
        rows = await self.connection.fetch(NODES_SQL, levels, positions)
        return {(r["level"], r["position"]): bytes(r["hash"]) for r in rows}

    async def hashes(self, wanted: Sequence[Node]) -> list[bytes]:
        """The hashes of these complete subtrees, in order; LookupError if the log lacks one."""
        levels = [level for level, _ in wanted]
        positions = [position for _, position in wanted]
        joined: bytes | None = await self.connection.fetchval(HASHES_SQL, levels, positions)
        if joined is None or len(joined) != HASH_SIZE * len(wanted):
            raise LookupError("the log lacks a complete subtree asked for")
        return [joined[start : start + HASH_SIZE] for start in range(0, len(joined), HASH_SIZE)]

    async def few_nodes(self, wanted: Sequence[Node]) -> dict[Node, bytes]:
        """The hashes of these complete subtrees (those the log has), PAIRS at a time."""
        found: dict[Node, bytes] = {}
        for first in range(0, len(wanted), PAIRS):
            chosen = wanted[first : first + PAIRS]
            pairs = [value for pair in chosen for value in pair]
            rows = await self.connection.fetch(PAIRS_SQL[len(chosen)], *pairs)
            found.update({(r["level"], r["position"]): bytes(r["hash"]) for r in rows})
        return found

    async def spans(self, spans: Sequence[tuple[int, int, int]]) -> list[tuple[int, int, bytes]]:
        """(level, position, hash) of the subtrees of each (level, first, end position), in
        order of level and position."""
        if not spans:
            return []
        levels, firsts, stops = (list(column) for column in zip(*spans, strict=True))
        rows = await self.connection.fetch(SPANS_SQL, levels, firsts, stops)
        return [(r["level"], r["position"], bytes(r["hash"])) for r in rows]

    async def add_leaves(
        self, first: int, leaves: Sequence[tuple[str, str, str]], *, at: datetime
    ) -> None:
        """Leaves (kind, record id, body) at positions first, first + 1, ..."""
        await self.connection.execute(
            ADD_LEAVES_SQL,
            list(range(first, first + len(leaves))),
            [kind for kind, _, _ in leaves],
            [record_id for _, record_id, _ in leaves],
            [body for _, _, body in leaves],
            at,
        )

    async def add_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        await self.connection.execute(
            ADD_NODES_SQL,
            [level for level, _, _ in nodes],
            [position for _, position, _ in nodes],
            [value for _, _, value in nodes],
        )

    async def entries(self, start: int, end: int) -> list[StoredLeaf]:
        rows = await self.connection.fetch(ENTRIES_SQL, start, end)
        return [StoredLeaf(r["leaf_index"], r["kind"], r["record_id"], r["body"]) for r in rows]

    async def index_of(self, kind: str, record_id: str) -> int | None:
        index: int | None = await self.connection.fetchval(INDEX_SQL, kind, record_id)
        return index
