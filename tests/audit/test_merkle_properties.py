"""Inclusion and consistency over random tree sizes: every proof the log makes verifies
against the root RFC 9162's definition gives (computed here by that definition), and the same
proof claimed for another leaf, another size or with a hash changed is refused."""

import hashlib
from functools import cache, lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.audit import merkle

MAX_SIZE = 3000


def leaf(i: int) -> bytes:
    return f"leaf {i}".encode()


@lru_cache(maxsize=1)
def big_tree() -> merkle.Tree:
    return merkle.Tree.of(leaf(i) for i in range(MAX_SIZE))


@cache
def mth(start: int, end: int) -> bytes:
    """RFC 9162 2.1.1, word for word: the hash of D[start:end]."""
    n = end - start
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaf(start)).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(start, start + k) + mth(start + k, end)).digest()


sizes = st.integers(min_value=1, max_value=MAX_SIZE)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), size=sizes)
def test_an_inclusion_proof_verifies_for_its_leaf_and_size_only(
    data: st.DataObject, size: int
) -> None:
    tree = big_tree()
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    root = tree.root(size)
    assert root == mth(0, size)
    proof = tree.inclusion(index, size)
    hashed = merkle.leaf_hash(leaf(index))
    merkle.verify_inclusion(index=index, size=size, leaf=hashed, proof=proof, root=root)

    other = data.draw(st.integers(min_value=0, max_value=size - 1).filter(lambda i: i != index))
    with pytest.raises(merkle.ProofRefused):
        merkle.verify_inclusion(index=other, size=size, leaf=hashed, proof=proof, root=root)
    if size < MAX_SIZE:
        with pytest.raises(merkle.ProofRefused):
            merkle.verify_inclusion(
                index=index, size=size + 1, leaf=hashed, proof=proof, root=tree.root(size + 1)
            )
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        changed = [*proof[:at], bytes(32), *proof[at + 1 :]]
        with pytest.raises(merkle.ProofRefused):
            merkle.verify_inclusion(index=index, size=size, leaf=hashed, proof=changed, root=root)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), new=sizes)
def test_a_consistency_proof_verifies_between_its_two_sizes_only(
    data: st.DataObject, new: int
) -> None:
    tree = big_tree()
    old = data.draw(st.integers(min_value=1, max_value=new))
    proof = tree.consistency(old, new)
    old_root, new_root = mth(0, old), mth(0, new)
    merkle.verify_consistency(old=old, new=new, old_root=old_root, new_root=new_root, proof=proof)

    if old < new:
        forged = merkle.Tree.of(leaf(i) if i != old - 1 else b"rewritten" for i in range(new))
        with pytest.raises(merkle.ProofRefused):
            merkle.verify_consistency(
                old=old,
                new=new,
                old_root=old_root,
                new_root=forged.root(),
                proof=forged.consistency(old, new),
            )
        with pytest.raises(merkle.ProofRefused):
            merkle.verify_consistency(
                old=new, new=old, old_root=new_root, new_root=old_root, proof=proof
            )
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        changed = [*proof[:at], bytes(32), *proof[at + 1 :]]
        with pytest.raises(merkle.ProofRefused):
            merkle.verify_consistency(
                old=old, new=new, old_root=old_root, new_root=new_root, proof=changed
            )


@settings(max_examples=100, deadline=None)
@given(size=sizes, data=st.data())
def test_the_frontier_gives_the_root_of_every_size(size: int, data: st.DataObject) -> None:
    frontier = merkle.Frontier()
    for i in range(size):
        frontier.append(merkle.leaf_hash(leaf(i)))
    assert frontier.root() == mth(0, size)
    reloaded = merkle.Frontier(size, [big_tree().nodes[n] for n in merkle.Frontier.nodes(size)])
    assert reloaded.root() == mth(0, size)
