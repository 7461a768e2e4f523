"""The Merkle tree of RFC 9162 section 2.1: its hashes, its proofs and their verification.

Pure functions, no I/O. A leaf's hash is SHA-256(0x00 || leaf), a node's SHA-256(0x01 || left ||
right); the tree over n leaves splits at the largest power of two below n. A proof is a list of
hashes of ranges of the tree, in the order RFC 9162 2.1.3.1 (inclusion) and 2.1.4.1
(consistency) give them. Every such range is a run of *complete subtrees* (2^level leaves
starting at a multiple of 2^level), and a complete subtree's hash never changes once its last
leaf is appended; the log stores them by (level, position), so a proof is a handful of look-ups
(`inclusion_nodes`, `consistency_nodes`) and a few hashes (`range_hash`).

`verify_inclusion` and `verify_consistency` follow RFC 9162 2.1.3.2 and 2.1.4.2, and raise
`ProofRefused` with what failed."""

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]  # (level, position): leaves [position·2^level, (position+1)·2^level)
Range = tuple[int, int]  # leaves [start, end)


class ProofRefused(Exception):
    """A proof that does not prove what it claims; the message says what failed."""


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two below `size` (size ≥ 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def complete_subtrees(start: int, end: int) -> list[Node]:
    """The complete subtrees that make up [start, end), left to right, each as large as it can
    be: the decomposition of every range a proof names (RFC 9162's MTH of that range)."""
    width = end - start
    if width > 0 and width & (width - 1) == 0 and start & (width - 1) == 0:
        level = width.bit_length() - 1
        return [(level, start >> level)]  # one complete subtree: most ranges of a proof
    nodes = []
    position = start
    while position < end:
        level = (position & -position).bit_length() - 1 if position else (end - 1).bit_length()
        while (1 << level) > end - position:
            level -= 1
        nodes.append((level, position >> level))
        position += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from its complete subtrees' hashes, left to right: the smaller ones
    to the right combine first."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def range_hash(span: Range, nodes: Mapping[Node, bytes]) -> bytes:
    return fold_nodes(complete_subtrees(*span), nodes)


def fold_nodes(subtrees: Sequence[Node], nodes: Mapping[Node, bytes]) -> bytes:
    """The hash of a range from its complete subtrees and their hashes."""
    return fold([nodes[node] for node in subtrees]) if subtrees else EMPTY_ROOT


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose hashes prove leaf `index` in the tree of `size` leaves, in the proof's
    order (RFC 9162 2.1.3.1: the sibling nearest the leaf first)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    ranges = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return ranges[::-1]


def consistency_ranges(old: int, new: int) -> list[Range]:
    """The ranges whose hashes prove the tree of `new` leaves extends the tree of `old`, in the
    proof's order (RFC 9162 2.1.4.1); 0 < old ≤ new."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from {old} to {new} leaves")
    ranges = []
    start, end, whole = 0, new, True
    m = old
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m -= k
            start += k
            whole = False
    if not whole:
        ranges.append((start, end))
    return ranges[::-1]


def nodes_of(ranges: Iterable[Range]) -> set[Node]:
    return {node for start, end in ranges for node in complete_subtrees(start, end)}


def proof_of(ranges: Sequence[Range], nodes: Mapping[Node, bytes]) -> list[bytes]:
    return [range_hash(span, nodes) for span in ranges]


# --- appending ----------------------------------------------------------------------------------


@dataclass
class Frontier:
    """The right edge of a tree: the hashes of the complete subtrees its size decomposes into
    (one per bit of the size, largest first). Enough to append leaves and to give the root."""

    size: int = 0
    hashes: list[bytes] = field(default_factory=list)

    @staticmethod
    def nodes(size: int) -> list[Node]:
        """The (level, position) of each hash of the frontier of `size` leaves."""
        return complete_subtrees(0, size)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Append a leaf's hash; returns every complete subtree it completes, (level, position,
        hash), the leaf itself first."""
        made = [(0, self.size, leaf)]
        level, position, current = 0, self.size, leaf
        while position & 1:
            current = node_hash(self.hashes.pop(), current)
            level, position = level + 1, position >> 1
            made.append((level, position, current))
        self.hashes.append(current)
        self.size += 1
        return made

    def root(self) -> bytes:
        return fold(self.hashes) if self.hashes else EMPTY_ROOT


@dataclass
class Tree:
    """A whole tree in memory, every complete subtree kept: for tests and small logs."""

    frontier: Frontier = field(default_factory=Frontier)
    nodes: dict[Node, bytes] = field(default_factory=dict)

    @classmethod
    def of(cls, leaves: Iterable[bytes]) -> "Tree":
        tree = cls()
        for leaf in leaves:
            tree.append(leaf_hash(leaf))
        return tree

    @property
    def size(self) -> int:
        return self.frontier.size

    def append(self, hashed: bytes) -> None:
        for level, position, value in self.frontier.append(hashed):
            self.nodes[level, position] = value

    def root(self, size: int | None = None) -> bytes:
        return range_hash((0, self.size if size is None else size), self.nodes)

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return proof_of(inclusion_ranges(index, size), self.nodes)

    def consistency(self, old: int, new: int) -> list[bytes]:
        return proof_of(consistency_ranges(old, new), self.nodes)


def roots(leaf_hashes: Iterable[bytes], sizes: Iterable[int]) -> Iterator[tuple[int, bytes]]:
    """The root at each of `sizes` of the tree of these leaves, streaming (memory: the
    frontier); a size beyond the leaves is not given."""
    wanted = sorted(set(sizes))
    frontier = Frontier()
    pending = iter(wanted)
    next_size = next(pending, None)
    while next_size == 0:
        yield 0, EMPTY_ROOT
        next_size = next(pending, None)
    for hashed in leaf_hashes:
        if next_size is None:
            return
        frontier.append(hashed)
        while next_size == frontier.size:
            yield next_size, frontier.root()
            next_size = next(pending, None)


# --- verifying ----------------------------------------------------------------------------------


def _right_shift_until_set(fn: int, sn: int) -> tuple[int, int]:
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def verify_inclusion(
    *, index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """That `leaf` (a leaf hash) is at `index` of the tree of `size` leaves whose root is
    `root` (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        raise ProofRefused(f"leaf {index} cannot be in a tree of {size} leaves")
    if len(leaf) != HASH_SIZE:
        raise ProofRefused(f"a leaf hash has {HASH_SIZE} bytes, not {len(leaf)}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofRefused(f"the inclusion proof is too long for leaf {index} of {size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                fn, sn = _right_shift_until_set(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofRefused(f"the inclusion proof is too short for leaf {index} of {size}")
    if r != root:
        raise ProofRefused(
            f"the inclusion proof of leaf {index} does not lead to the root of size {size}"
        )


def verify_consistency(
    *, old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """That the tree of `new` leaves whose root is `new_root` extends the tree of `old` leaves
    whose root is `old_root` (RFC 9162 2.1.4.2); 0 < old ≤ new."""
    if old <= 0:
        raise ProofRefused("a consistency proof starts from a tree of one leaf or more")
    if new < old:
        raise ProofRefused(f"size {new} is smaller than {old}: the log shrank")
    if old == new:
        if proof:
            raise ProofRefused("a consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofRefused(f"two different roots for the same size {old}")
        return
    if not proof:
        raise ProofRefused(f"an empty consistency proof from {old} to {new}")
    path = [old_root, *proof] if old & (old - 1) == 0 else list(proof)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofRefused(f"the consistency proof from {old} to {new} is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                fn, sn = _right_shift_until_set(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofRefused(f"the consistency proof from {old} to {new} is too short")
    if fr != old_root:
        raise ProofRefused(f"the consistency proof does not lead to the root of size {old}")
    if sr != new_root:
        raise ProofRefused(f"the consistency proof does not lead to the root of size {new}")
