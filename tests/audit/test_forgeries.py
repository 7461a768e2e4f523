"""Logs that lie, and how they are caught. A log's operator holds its signing key, so a
rewritten log can be signed again; what it cannot do is prove that the rewritten log extends
a checkpoint a witness kept. Each refusal says what failed."""

import json
from pathlib import Path

import httpx
import pytest

from services.audit.checkpoints import Checkpoint, CheckpointRefused, Signer
from services.audit.config import AuditSettings
from services.audit.sources import HttpLog, Kept
from services.audit.verifying import verify
from services.audit.witness import Inconsistent, witness
from tests.support.audit import HandMadeLog, listening, made_leaves, sanwu

pytestmark = pytest.mark.timeout(120)


def signer() -> Signer:
    return AuditSettings(environment="test").signer()


def over_http(log: HandMadeLog) -> HttpLog:
    transport = httpx.ASGITransport(app=log.app())
    return HttpLog(httpx.AsyncClient(transport=transport, base_url="http://log"))


async def test_a_witness_catches_a_log_that_drops_a_leaf_and_signs_again(
    tmp_path: Path,
) -> None:
    log = HandMadeLog(signer(), made_leaves(10))
    state = tmp_path / "witness.json"
    env = {"SANWU_ENVIRONMENT": "test", "SANWU_LOG_LEVEL": "WARNING", "SANWU_API_KEY": "any"}
    async with listening(log.app()) as url:
        ran = await sanwu("audit", "witness", "--url", url, "--state", str(state), env=env)
        assert ran.code == 0, ran.stdout + ran.stderr
        kept = state.read_text(encoding="utf-8")

        log.leaves = log.leaves[:3] + log.leaves[4:] + made_leaves(3, start=10)
        ran = await sanwu("audit", "witness", "--url", url, "--state", str(state), env=env)
    assert ran.code == 1
    lines = ran.stdout.splitlines()
    assert lines[0].startswith("INCONSISTENT: the consistency proof")
    assert json.loads(lines[1].removeprefix("kept:   "))["size"] == 10
    assert json.loads(lines[2].removeprefix("latest: "))["size"] == 12
    assert state.read_text(encoding="utf-8") == kept  # the kept checkpoint stays


async def test_a_city_proves_a_record_is_in_the_checkpoint_it_kept_and_not_once_rewritten(
    tmp_path: Path,
) -> None:
    log = HandMadeLog(signer(), made_leaves(10))
    state = tmp_path / "witness.json"
    env = {"SANWU_ENVIRONMENT": "test", "SANWU_LOG_LEVEL": "WARNING", "SANWU_API_KEY": "any"}
    wanted = log.leaves[6]
    ask = ["--kind", str(wanted.kind), "--id", wanted.record_id, "--state", str(state)]
    async with listening(log.app()) as url:
        await sanwu("audit", "witness", "--url", url, "--state", str(state), env=env)
        proven = await sanwu("audit", "included", "--url", url, *ask, env=env)

        log.leaves[6] = made_leaves(1, start=60)[0]  # rewritten under the same record
        log.leaves[6] = type(wanted)(wanted.kind, wanted.record_id, log.leaves[6].body)
        rewritten = await sanwu("audit", "included", "--url", url, *ask, env=env)

        log.leaves.extend(made_leaves(1, start=10))
        newer = log.leaves[10]
        later = ["--kind", str(newer.kind), "--id", newer.record_id, "--state", str(state)]
        too_new = await sanwu("audit", "included", "--url", url, *later, env=env)

    assert proven.code == 0, proven.stdout + proven.stderr
    assert proven.stdout.splitlines()[0].startswith("included: leaf 6 in ")
    assert proven.stdout.splitlines()[1] == wanted.text
    assert rewritten.code == 1
    assert "does not lead to the root of size 10" in rewritten.stdout
    assert too_new.code == 1 and "newer than the kept checkpoint of size 10" in too_new.stdout


async def test_a_witness_refuses_a_forged_signature(tmp_path: Path) -> None:
    log = HandMadeLog(signer(), made_leaves(5), forged_signature=True)
    with pytest.raises(CheckpointRefused, match=r"signature of the checkpoint .* does not verify"):
        await witness(over_http(log), None)


async def test_a_witness_refuses_a_log_signed_with_another_key() -> None:
    honest = HandMadeLog(signer(), made_leaves(5))
    first = await witness(over_http(honest), None)
    other = HandMadeLog(Signer.from_text("A" * 43 + "=", origin="sanwu.local/audit"))
    other.leaves = made_leaves(6)
    with pytest.raises(CheckpointRefused, match=r"names key .*, not the log's key"):
        await witness(over_http(other), first.now)


async def test_a_witness_refuses_a_log_that_shrank() -> None:
    log = HandMadeLog(signer(), made_leaves(8))
    first = await witness(over_http(log), None)
    log.leaves = log.leaves[:5]
    with pytest.raises(Inconsistent, match="shrank"):
        await witness(over_http(log), first.now)


async def test_verify_finds_a_rewritten_log_against_a_kept_checkpoint() -> None:
    log = HandMadeLog(signer(), made_leaves(9))
    kept = Checkpoint.from_json(log.checkpoint())
    log.leaves[2] = made_leaves(1, start=50)[0]
    verdict = await verify(over_http(log), history=None, kept=kept, key=log.signer.public_key)
    assert not verdict.holds
    assert any("history was rewritten" in finding for finding in verdict.findings)
    assert any("not consistent with the kept one" in finding for finding in verdict.findings)


async def test_verify_refuses_a_forged_checkpoint_and_a_repeated_record() -> None:
    log = HandMadeLog(signer(), made_leaves(4), forged_signature=True)
    verdict = await verify(over_http(log), history=None, key=log.signer.public_key)
    assert verdict.findings[0].startswith("checkpoint refused: the signature of the checkpoint")

    log = HandMadeLog(signer(), made_leaves(4) + made_leaves(1))
    verdict = await verify(over_http(log), history=None)
    assert verdict.findings == [
        "leaf 4 (event 00000000-0000-0000-0000-000000000001) repeats leaf 0"
    ]


async def test_an_honest_log_holds() -> None:
    log = HandMadeLog(signer(), made_leaves(40))
    kept = Checkpoint.from_json(log.checkpoint())
    log.leaves += made_leaves(25, start=40)
    verdict = await verify(over_http(log), history=None, kept=kept, key=log.signer.public_key)
    assert verdict.findings == [] and verdict.size == 65
    done = await witness(over_http(log), Kept(log.signer.public_key, kept))
    assert done.latest.size == 65
