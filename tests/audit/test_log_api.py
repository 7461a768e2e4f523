"""What the log serves: one leaf per history record with no free text and no reference in
clear, checkpoints signed with the published key, and proofs that verify against them; bad
input refused with problem+json."""

import base64
import hashlib
import json

import pytest

from services.audit import merkle
from services.audit.checkpoints import Checkpoint, PublicKey
from tests.support.audit import SIBLING_VILLAGE, VILLAGE, AuditWorld
from tests.support.events import incident, visit

pytestmark = pytest.mark.timeout(120)


def unb64(value: str) -> bytes:
    return base64.b64decode(value)


async def leaf_text(world: AuditWorld, index: int) -> str:
    response = await world.audit.get("/v1/log/entries", params={"start": index, "end": index + 1})
    assert response.status_code == 200, response.text
    (entry,) = response.json()["entries"]
    assert entry["index"] == index
    text: str = entry["leaf"]
    return text


async def test_each_history_record_is_a_leaf_without_free_text_or_clear_references(
    world: AuditWorld,
) -> None:
    visit_id = await world.post_event(visit(VILLAGE, petitioner_ref="张三-身份证-123"))
    incident_id = await world.post_event(incident(SIBLING_VILLAGE))
    step_id = await world.add_step(reason="材料不全，请补充")

    visit_leaf = json.loads(await leaf_text(world, await world.index_of("event", visit_id)))
    assert visit_leaf["kind"] == "event" and visit_leaf["id"] == visit_id
    assert visit_leaf["event"]["petitioner_ref"].startswith("hmac-sha256:")
    assert "张三" not in json.dumps(visit_leaf, ensure_ascii=False)
    incident_text = await leaf_text(world, await world.index_of("event", incident_id))
    assert "极端事件" not in incident_text
    assert "summary" not in json.loads(incident_text)["event"]

    step_leaf = json.loads(
        await leaf_text(world, await world.index_of("application_step", step_id))
    )
    assert step_leaf["action"] == "returned"
    assert step_leaf["reason_sha256"] == hashlib.sha256("材料不全，请补充".encode()).hexdigest()
    assert "reason" not in step_leaf and step_leaf["detail"] == {"note_count": 2}

    # The keys made at the start: their creation is in the key audit, so in the log, with the
    # person who made them only as a hash.
    creations = []
    for audit_id in (1, 2, 3):
        index = await world.index_of("key_operation", audit_id)
        creations.append(json.loads(await leaf_text(world, index)))
    assert {c["action"] for c in creations} == {"created"}
    expected_actor = "user:sha256:" + hashlib.sha256(b"user:auditor").hexdigest()
    assert {c["actor"] for c in creations} == {expected_actor}


async def test_an_inclusion_proof_verifies_against_a_checkpoint_signed_with_the_published_key(
    world: AuditWorld,
) -> None:
    event_id = await world.post_event(visit(VILLAGE))
    index = await world.index_of("event", event_id)
    checkpoint = Checkpoint.from_json(await world.checkpoint(covering=index + 1))
    key = PublicKey.from_json((await world.audit.get("/v1/log/public-key")).json())
    key.verify(checkpoint)
    assert key.raw == world.settings.signer().public_key.raw

    body = (await leaf_text(world, index)).encode()
    response = await world.audit.get(
        "/v1/log/proof/inclusion", params={"index": index, "size": checkpoint.size}
    )
    assert response.status_code == 200, response.text
    proof = [unb64(h) for h in response.json()["hashes"]]
    merkle.verify_inclusion(
        index=index,
        size=checkpoint.size,
        leaf=merkle.leaf_hash(body),
        proof=proof,
        root=checkpoint.root_hash,
    )
    # The same proof does not hold for another leaf's bytes, nor against another size.
    with pytest.raises(merkle.ProofRefused, match="does not lead to the root"):
        merkle.verify_inclusion(
            index=index,
            size=checkpoint.size,
            leaf=merkle.leaf_hash(body + b" "),
            proof=proof,
            root=checkpoint.root_hash,
        )


async def test_a_later_checkpoint_is_proven_consistent_with_an_earlier_one(
    world: AuditWorld,
) -> None:
    first = Checkpoint.from_json(await world.checkpoint(covering=1))
    await world.index_of("event", await world.post_event(visit(VILLAGE)))
    later = Checkpoint.from_json(await world.checkpoint(covering=first.size + 1))
    response = await world.audit.get(
        "/v1/log/proof/consistency", params={"from": first.size, "to": later.size}
    )
    assert response.status_code == 200, response.text
    assert response.json()["from"] == first.size
    proof = [unb64(h) for h in response.json()["hashes"]]
    merkle.verify_consistency(
        old=first.size,
        new=later.size,
        old_root=first.root_hash,
        new_root=later.root_hash,
        proof=proof,
    )


async def test_a_proof_for_another_size_than_the_checkpoints_is_refused(
    world: AuditWorld,
) -> None:
    await world.index_of("event", await world.post_event(visit(VILLAGE)))
    checkpoint = Checkpoint.from_json(await world.checkpoint(covering=3))
    body = (await leaf_text(world, 0)).encode()
    smaller = checkpoint.size - 1
    response = await world.audit.get(
        "/v1/log/proof/inclusion", params={"index": 0, "size": smaller}
    )
    proof = [unb64(h) for h in response.json()["hashes"]]
    with pytest.raises(merkle.ProofRefused, match=f"of (size )?{checkpoint.size}"):
        merkle.verify_inclusion(
            index=0,
            size=checkpoint.size,
            leaf=merkle.leaf_hash(body),
            proof=proof,
            root=checkpoint.root_hash,
        )


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/v1/log/entries", {"start": 5, "end": 5}, 422, "end"),
        ("/v1/log/entries", {"start": 0, "end": 1001}, 422, "end"),
        ("/v1/log/entries", {"start": -1, "end": 3}, 422, "start"),
        ("/v1/log/entries", {"start": "²", "end": 3}, 422, "start"),
        ("/v1/log/proof/inclusion", {"index": 3, "size": 3}, 422, "index"),
        ("/v1/log/proof/inclusion", {"index": 0, "size": 10**12}, 422, "size"),
        ("/v1/log/proof/inclusion", {"index": 0, "size": 0}, 422, "size"),
        ("/v1/log/proof/consistency", {"from": 3, "to": 2}, 422, "from"),
        ("/v1/log/proof/consistency", {"from": 0, "to": 2}, 422, "from"),
        ("/v1/log/proof/consistency", {"from": 1, "to": 10**12}, 422, "to"),
        ("/v1/log/leaf/petition/1", {}, 422, "kind"),
        ("/v1/log/leaf/event/not%20an%20id", {}, 422, "id"),
    ],
)
async def test_bad_input_is_a_problem(
    world: AuditWorld, path: str, params: dict[str, object], status: int, field: str
) -> None:
    response = await world.audit.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_an_unknown_record_is_404_and_the_log_needs_a_key(world: AuditWorld) -> None:
    response = await world.audit.get("/v1/log/leaf/event/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.json()["type"] == "urn:sanwu:problem:leaf-not-found"
    response = await world.audit.get("/v1/log/checkpoint", headers={"Authorization": ""})
    assert response.status_code == 401
