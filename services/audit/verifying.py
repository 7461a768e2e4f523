"""`sanwu audit verify`: the log checked end to end, every difference named.

1. Every checkpoint's signature, under the key trusted (given, kept by a witness, or else the
   log's own).
2. The tree recomputed from the entries: each leaf canonical JSON, each record once, and the
   root at each checkpoint's size the checkpoint's root.
3. A checkpoint kept earlier (`--from-checkpoint`): its root is the root of the log's first
   leaves still, and the log's consistency proof from it to the latest checkpoint verifies.
4. Each service's history rows against their leaves: a row whose leaf differs, a leaf whose
   row is gone. Rows not in the log yet (still on their way) are counted, not findings."""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from services.audit import merkle
from services.audit.checkpoints import Checkpoint, CheckpointRefused, PublicKey
from services.audit.leaves import Leaf, LeafKind, identity_of, is_canonical
from services.audit.repository.history import table_of
from services.audit.sources import LogSource, LogUnavailable, every_entry

Identity = tuple[str, str]  # (kind, id)
HistoryRows = Callable[[LeafKind], AsyncIterator[Leaf]]


@dataclass
class Verdict:
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    size: int = 0
    checkpoints: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    not_yet_logged: dict[str, int] = field(default_factory=dict)

    @property
    def holds(self) -> bool:
        return not self.findings


@dataclass
class Recomputed:
    """The log's entries walked once: each record's position and leaf hash, and the root at
    each size asked for."""

    leaves: dict[Identity, tuple[int, bytes]] = field(default_factory=dict)
    roots: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


def named(index: int, identity: Identity) -> str:
    return f"leaf {index} ({identity[0]} {identity[1]})"


async def recompute(
    source: LogSource, *, size: int, sizes: set[int], verdict: Verdict
) -> Recomputed:
    found = Recomputed()
    frontier = merkle.Frontier()
    if 0 in sizes:
        found.roots[0] = merkle.EMPTY_ROOT
    async for index, body in every_entry(source, size):
        if index != frontier.size:
            verdict.findings.append(f"the log gave leaf {index} where leaf {frontier.size} was due")
            break
        hashed = merkle.leaf_hash(body)
        frontier.append(hashed)
        if frontier.size in sizes:
            found.roots[frontier.size] = frontier.root()
        _check_leaf(index, body, hashed, found, verdict)
    found.size = frontier.size
    if found.size < size:
        verdict.findings.append(f"the log has {found.size} entries, its checkpoint {size}")
    return found


def _check_leaf(
    index: int, body: bytes, hashed: bytes, found: Recomputed, verdict: Verdict
) -> None:
    try:
        identity = identity_of(body)
    except ValueError as exc:
        verdict.findings.append(f"leaf {index} is not a record of this log: {exc}")
        return
    if not is_canonical(body):
        verdict.findings.append(f"{named(index, identity)} is not canonical JSON (RFC 8785)")
    if identity in found.leaves:
        first = found.leaves[identity][0]
        verdict.findings.append(f"{named(index, identity)} repeats leaf {first}")
        return
    found.leaves[identity] = (index, hashed)


def check_signatures(
    checkpoints: list[Checkpoint], key: PublicKey, verdict: Verdict
) -> list[Checkpoint]:
    """The checkpoints whose signature verifies; a finding for each other one."""
    good = []
    for checkpoint in checkpoints:
        try:
            key.verify(checkpoint)
        except CheckpointRefused as exc:
            verdict.findings.append(f"checkpoint refused: {exc}")
        else:
            good.append(checkpoint)
    return good


def check_roots(checkpoints: list[Checkpoint], found: Recomputed, verdict: Verdict) -> None:
    for checkpoint in checkpoints:
        root = found.roots.get(checkpoint.size)
        if root is not None and root != checkpoint.root_hash:
            verdict.findings.append(
                f"checkpoint ({checkpoint.describe()}) does not match the tree of the log's "
                f"first {checkpoint.size} entries"
            )


async def check_kept(
    source: LogSource,
    kept: Checkpoint,
    latest: Checkpoint,
    found: Recomputed,
    verdict: Verdict,
) -> None:
    """That the log still extends the checkpoint kept earlier."""
    if kept.size > latest.size:
        verdict.findings.append(
            f"the log shrank: its latest checkpoint has {latest.size} leaves, the kept one "
            f"({kept.describe()}) {kept.size}"
        )
        return
    if found.roots.get(kept.size) not in (None, kept.root_hash):
        verdict.findings.append(
            f"the log's first {kept.size} entries no longer make the kept checkpoint's root "
            f"({kept.describe()}): history was rewritten"
        )
    if kept.size == 0:
        return
    try:
        proof = await source.consistency(kept.size, latest.size)
        merkle.verify_consistency(
            old=kept.size,
            new=latest.size,
            old_root=kept.root_hash,
            new_root=latest.root_hash,
            proof=proof,
        )
    except (merkle.ProofRefused, LogUnavailable) as exc:
        verdict.findings.append(
            f"the latest checkpoint ({latest.describe()}) is not consistent with the kept one "
            f"({kept.describe()}): {exc}"
        )


async def check_history(history: HistoryRows, found: Recomputed, verdict: Verdict) -> None:
    seen: set[Identity] = set()
    for kind in LeafKind:
        table = table_of(kind)
        rows = missing = 0
        async for leaf in history(kind):
            rows += 1
            identity = (leaf.kind.value, leaf.record_id)
            logged = found.leaves.get(identity)
            if logged is None:
                missing += 1
                continue
            seen.add(identity)
            index, hashed = logged
            if merkle.leaf_hash(leaf.body) != hashed:
                verdict.findings.append(f"{named(index, identity)} differs from its row in {table}")
        verdict.rows[table] = rows
        verdict.not_yet_logged[table] = missing
    kinds = {kind.value: table_of(kind) for kind in LeafKind}
    for identity, (index, _) in sorted(found.leaves.items(), key=lambda item: item[1][0]):
        if identity[0] in kinds and identity not in seen:
            verdict.findings.append(f"{named(index, identity)} has no row in {kinds[identity[0]]}")


async def verify(
    source: LogSource,
    *,
    history: HistoryRows | None,
    kept: Checkpoint | None = None,
    key: PublicKey | None = None,
) -> Verdict:
    """`key`: the key to trust (none: the log's own, noted)."""
    verdict = Verdict()
    served = await source.public_key()
    if key is None:
        key = served
        verdict.notes.append(f"trusting the key the log names, {key.key_id}")
    elif served.raw != key.raw:
        verdict.findings.append(f"the log names key {served.key_id}, not {key.key_id}")
    elif not key.origin:
        key = served  # the key given, with the log's name
    checkpoints = check_signatures(await source.checkpoints(), key, verdict)
    verdict.checkpoints = len(checkpoints)
    if kept is not None:
        try:
            key.verify(kept)
        except CheckpointRefused as exc:
            verdict.findings.append(f"the kept checkpoint is refused: {exc}")
            kept = None
    if not checkpoints:
        verdict.findings.append("the log has no checkpoint whose signature verifies")
        return verdict
    latest = max(checkpoints, key=lambda c: c.size)
    sizes = {c.size for c in checkpoints} | ({kept.size} if kept else set())
    found = await recompute(source, size=latest.size, sizes=sizes, verdict=verdict)
    verdict.size = found.size
    check_roots(checkpoints, found, verdict)
    if kept is not None:
        await check_kept(source, kept, latest, found, verdict)
    if history is not None:
        await check_history(history, found, verdict)
    return verdict
