"""The log's leaves, the hashes of its complete subtrees and its size. Appending takes the
head row's lock for the transaction: one appender at a time, whatever process it runs in."""

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

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
# Appended by COPY rather than arrays: asyncpg checks every element of an array for nesting
# (a Python call each), and the server writes copied rows a page at a time.
LEAF_COLUMNS = ["leaf_index", "kind", "record_id", "body", "appended_at"]
NODE_COLUMNS = ["level", "position", "hash"]
SAVEPOINT_SQL = "SAVEPOINT new_leaves"
RELEASE_SQL = "RELEASE SAVEPOINT new_leaves"
ROLLBACK_TO_SQL = "ROLLBACK TO SAVEPOINT new_leaves"
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
# Subtrees of a level by runs of up to 2^RUN_BITS (1 MB of hashes): a row each would be
# millions of rows when a service first follows a log of millions of leaves.
RUN_BITS = 15
SPANS_SQL = f"""
    SELECT n.level, min(n.position), string_agg(n.hash, ''::bytea ORDER BY n.position)
    FROM unnest($1::smallint[], $2::bigint[], $3::bigint[]) AS s(level, first, stop)
    JOIN {node.fullname} n ON n.level = s.level AND n.position >= s.first AND n.position < s.stop
    GROUP BY n.level, n.position >> {RUN_BITS}
    ORDER BY n.level, min(n.position)
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
        """The subtrees of each (level, first, end position) by runs, in order of level and
        position: (level, first position of the run, its hashes end to end)."""
        if not spans:
            return []
        levels, firsts, stops = (list(column) for column in zip(*spans, strict=True))
        rows = await self.connection.fetch(SPANS_SQL, levels, firsts, stops)
        return [(level, first, bytes(hashes)) for level, first, hashes in rows]

    async def add_leaves(
        self, first: int, leaves: Sequence[tuple[str, str, str]], *, at: datetime
    ) -> None:
        """Leaves (kind, record id, body) at positions first, first + 1, ..."""
        await self.connection.copy_records_to_table(
            leaf.name,
            schema_name=leaf.schema,
            columns=LEAF_COLUMNS,
            records=[
                (index, kind, record_id, body, at)
                for index, (kind, record_id, body) in enumerate(leaves, first)
            ],
        )

    async def add_new_leaves(
        self, first: int, leaves: Sequence[tuple[str, str, str]], *, at: datetime
    ) -> bool:
        """The leaves added as `add_leaves` does if the log holds none of their (kind, record
        id), none of them otherwise; whether they were added. The unique index tells, at no
        more cost than adding them: cheaper than asking first when they are nearly always new."""
        await self.connection.execute(SAVEPOINT_SQL)
        try:
            await self.add_leaves(first, leaves, at=at)
        except asyncpg.UniqueViolationError:
            await self.connection.execute(ROLLBACK_TO_SQL)
            return False
        await self.connection.execute(RELEASE_SQL)
        return True

    async def add_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        """Complete subtrees (level, position, hash)."""
        await self.connection.copy_records_to_table(
            node.name, schema_name=node.schema, columns=NODE_COLUMNS, records=nodes
        )

    async def entries(self, start: int, end: int) -> list[StoredLeaf]:
        rows = await self.connection.fetch(ENTRIES_SQL, start, end)
        return [StoredLeaf(r["leaf_index"], r["kind"], r["record_id"], r["body"]) for r in rows]

    async def index_of(self, kind: str, record_id: str) -> int | None:
        index: int | None = await self.connection.fetchval(INDEX_SQL, kind, record_id)
        return index
