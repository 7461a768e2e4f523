"""The log's hashing and proofs against the published RFC 6962 / RFC 9162 test vectors of
transparency-dev/merkle (vendored in tests/audit/vectors, see its README)."""

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from services.audit import merkle

VECTORS = Path(__file__).parent / "vectors"
TREE = json.loads((VECTORS / "tree.json").read_text(encoding="utf-8"))
LEAVES = [bytes.fromhex(leaf) for leaf in TREE["leaf_inputs"]]
ROOTS = [bytes.fromhex(root) for root in TREE["root_hashes"]]


def probes(kind: str) -> list[tuple[str, dict[str, Any]]]:
    folder = VECTORS / "testdata" / kind
    return [
        (str(path.relative_to(folder)), json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(folder.rglob("*.json"))
    ]


def b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def test_hashes_of_leaves_and_nodes_are_rfc_6962s() -> None:
    assert merkle.EMPTY_ROOT.hex() == TREE["root_hashes"][0]
    assert merkle.leaf_hash(b"L123456").hex() == (
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert merkle.node_hash(b"N123", b"N456").hex() == (
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_every_complete_subtree_and_every_root_of_the_reference_tree() -> None:
    tree = merkle.Tree.of(LEAVES)
    for level, hashes in enumerate(TREE["node_hashes"]):
        for position, expected in enumerate(hashes):
            assert tree.nodes[level, position].hex() == expected, (level, position)
    assert [tree.root(size) for size in range(9)] == ROOTS
    assert [merkle.Tree.of(LEAVES[:size]).root() for size in range(9)] == ROOTS
    assert dict(merkle.roots(map(merkle.leaf_hash, LEAVES), range(9))) == dict(enumerate(ROOTS))


INCLUSION = probes("inclusion")
CONSISTENCY = probes("consistency")


@pytest.mark.parametrize(("name", "probe"), INCLUSION, ids=[name for name, _ in INCLUSION])
def test_inclusion_probe(name: str, probe: dict[str, Any]) -> None:
    def verify() -> None:
        merkle.verify_inclusion(
            index=probe["leafIdx"],
            size=probe["treeSize"],
            leaf=b64(probe["leafHash"]),
            proof=[b64(p) for p in probe["proof"] or []],
            root=b64(probe["root"]),
        )

    if probe["wantErr"]:
        with pytest.raises(merkle.ProofRefused):
            verify()
    else:
        verify()


@pytest.mark.parametrize(("name", "probe"), CONSISTENCY, ids=[name for name, _ in CONSISTENCY])
def test_consistency_probe(name: str, probe: dict[str, Any]) -> None:
    def verify() -> None:
        merkle.verify_consistency(
            old=probe["size1"],
            new=probe["size2"],
            old_root=b64(probe["root1"]),
            new_root=b64(probe["root2"]),
            proof=[b64(p) for p in probe["proof"] or []],
        )

    if probe["wantErr"]:
        with pytest.raises(merkle.ProofRefused):
            verify()
    else:
        verify()


def reference_happy_paths(kind: str) -> list[dict[str, Any]]:
    """The probes a correct log makes itself: proofs over the reference tree."""
    found = []
    for _, probe in probes(kind):
        if probe["wantErr"]:
            continue
        size, root = (
            (probe["treeSize"], probe["root"])
            if kind == "inclusion"
            else (probe["size2"], probe["root2"])
        )
        if size <= len(LEAVES) and b64(root) == ROOTS[size]:
            found.append(probe)
    return found


def test_the_log_makes_the_reference_inclusion_proofs() -> None:
    tree = merkle.Tree.of(LEAVES)
    made = reference_happy_paths("inclusion")
    assert len(made) >= 4
    for probe in made:
        proof = tree.inclusion(probe["leafIdx"], probe["treeSize"])
        assert proof == [b64(p) for p in probe["proof"] or []], probe


def test_the_log_makes_the_reference_consistency_proofs() -> None:
    tree = merkle.Tree.of(LEAVES)
    made = [p for p in reference_happy_paths("consistency") if p["size1"] > 0]
    assert len(made) >= 4
    for probe in made:
        proof = tree.consistency(probe["size1"], probe["size2"])
        assert proof == [b64(p) for p in probe["proof"] or []], probe
