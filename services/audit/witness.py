"""`sanwu audit witness`: what a city runs from cron beside its feed pulls. It fetches the
log's latest checkpoint, checks its signature under the key it kept (the first run keeps the
key the log names, or the one given), checks that the checkpoint extends the one it kept
(a consistency proof, RFC 9162 2.1.4), and only then keeps the new one. A log that rewrote,
dropped or reordered anything it had shown cannot prove that, and the witness says so."""

from dataclasses import dataclass

from services.audit import merkle
from services.audit.checkpoints import Checkpoint, CheckpointRefused, PublicKey
from services.audit.sources import HttpLog, Kept, LogSource


class Inconsistent(Exception):
    """The log's latest checkpoint does not extend the one kept."""

    def __init__(self, reason: str, *, kept: Checkpoint, latest: Checkpoint) -> None:
        super().__init__(reason)
        self.kept = kept
        self.latest = latest


@dataclass(frozen=True)
class Witnessed:
    before: Checkpoint | None  # the checkpoint kept before (None: the first run)
    now: Kept  # what to keep from now on

    @property
    def latest(self) -> Checkpoint:
        return self.now.checkpoint


async def witness(
    source: LogSource, kept: Kept | None, *, key: PublicKey | None = None
) -> Witnessed:
    """Check the log's latest checkpoint against the one kept (None: the first run) and return
    what to keep now. Raises CheckpointRefused (a bad signature, another key) or Inconsistent;
    nothing is to be kept then."""
    if kept is not None and key is not None and kept.key.raw != key.raw:
        raise CheckpointRefused(f"the witness keeps key {kept.key.key_id}, not {key.key_id}")
    trusted = kept.key if kept is not None else await served_key(source, given=key)
    served = await source.checkpoints()
    if not served:
        raise CheckpointRefused("the log has signed no checkpoint yet")
    latest = served[-1]
    trusted.verify(latest)
    if kept is not None:
        await check_extends(source, kept.checkpoint, latest)
    return Witnessed(kept.checkpoint if kept else None, Kept(trusted, latest))


async def served_key(source: LogSource, *, given: PublicKey | None) -> PublicKey:
    """The key the log names, which must be the one given (if any)."""
    served = await source.public_key()
    if given is not None and served.raw != given.raw:
        raise CheckpointRefused(f"the log names key {served.key_id}, not {given.key_id}")
    return served


async def check_extends(source: LogSource, kept: Checkpoint, latest: Checkpoint) -> None:
    if latest.size < kept.size:
        raise Inconsistent("the log shrank", kept=kept, latest=latest)
    if kept.size == 0:
        return
    proof = [] if latest.size == kept.size else await source.consistency(kept.size, latest.size)
    try:
        merkle.verify_consistency(
            old=kept.size,
            new=latest.size,
            old_root=kept.root_hash,
            new_root=latest.root_hash,
            proof=proof,
        )
    except merkle.ProofRefused as exc:
        raise Inconsistent(str(exc), kept=kept, latest=latest) from None


@dataclass(frozen=True)
class Included:
    index: int
    leaf: bytes  # the leaf's canonical JSON, as the log holds it
    checkpoint: Checkpoint


async def prove_included(log: HttpLog, kept: Kept, *, kind: str, record_id: str) -> Included:
    """That the record's leaf is in the checkpoint the witness kept (an inclusion proof,
    RFC 9162 2.1.3): the answer a city needs about one event or step, trusting nothing the log
    says now. Raises merkle.ProofRefused, or NotYetCovered when the kept checkpoint is older
    than the leaf."""
    index = await log.leaf_index(kind, record_id)
    checkpoint = kept.checkpoint
    if index >= checkpoint.size:
        raise NotYetCovered(
            f"leaf {index} is newer than the kept checkpoint of size {checkpoint.size}: "
            "witness the log again, then ask"
        )
    entries = await log.entries(index, index + 1)
    if [i for i, _ in entries] != [index]:
        raise merkle.ProofRefused(f"the log did not serve leaf {index}")
    leaf = entries[0][1]
    proof = await log.inclusion(index, checkpoint.size)
    merkle.verify_inclusion(
        index=index,
        size=checkpoint.size,
        leaf=merkle.leaf_hash(leaf),
        proof=proof,
        root=checkpoint.root_hash,
    )
    return Included(index, leaf, checkpoint)


class NotYetCovered(Exception):
    """The record's leaf came after the checkpoint kept."""
