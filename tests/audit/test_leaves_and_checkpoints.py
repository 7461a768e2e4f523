"""The leaves' canonical JSON, the checkpoints' signed text, and the signing key's settings:
checked without the stack."""

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from services.audit.checkpoints import Checkpoint, CheckpointRefused, Signer
from services.audit.config import AuditSettings
from services.audit.leaves import canonical, event_leaf, moment

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(value=json_values)
def test_canonical_json_is_rfc_8785s(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        return  # what RFC 8785 cannot write (integers past 2^53), no leaf holds
    assert canonical(value) == expected


def test_a_leaf_is_the_same_whatever_offset_its_moments_were_written_with() -> None:
    shanghai = timezone(timedelta(hours=8))
    at = datetime(2026, 12, 6, 18, 0, 1, 250000, tzinfo=shanghai)
    one = event_leaf(event_id="e1", payload={"b": 1, "a": "甲"}, accepted_at=at, key_id="k")
    other = event_leaf(
        event_id="e1", payload={"a": "甲", "b": 1}, accepted_at=at.astimezone(UTC), key_id="k"
    )
    assert one.body == other.body
    assert (
        one.body
        == (
            '{"accepted_at":"2026-12-06T10:00:01.250000Z","event":{"a":"甲","b":1},'
            '"id":"e1","key_id":"k","kind":"event"}'
        ).encode()
    )
    assert moment(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000000Z"


def test_the_signed_text_and_its_signature_as_documented() -> None:
    seed = bytes(range(32))
    signer = Signer.from_text(base64.b64encode(seed).decode(), origin="county.example/audit")
    root = hashlib.sha256(b"root").digest()
    signed = signer.sign(size=42, root_hash=root, time=datetime(2026, 12, 6, tzinfo=UTC))
    text = (
        "county.example/audit\n42\n"
        + base64.b64encode(root).decode()
        + "\ntime 2026-12-06T00:00:00.000000Z\n"
    ).encode()
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    public.verify(signed.signature, text)  # raises if the text signed is another
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert signed.key_id == hashlib.sha256(raw).digest()[:8].hex()
    assert Checkpoint.from_json(signed.as_json()) == signed

    changed = Checkpoint.from_json(signed.as_json() | {"size": 43})
    with pytest.raises(CheckpointRefused, match="does not verify"):
        signer.public_key.verify(changed)
    with pytest.raises(CheckpointRefused, match="no root_hash"):
        Checkpoint.from_json({k: v for k, v in signed.as_json().items() if k != "root_hash"})


def test_a_pem_key_signs_like_its_seed() -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    from_pem = Signer.from_text(pem, origin="o")
    from_seed = Signer.from_text(base64.b64encode(seed).decode(), origin="o")
    assert from_pem.public_key == from_seed.public_key
    checkpoint = from_pem.sign(size=1, root_hash=bytes(32), time=datetime.now(UTC))
    Ed25519PublicKey.from_public_bytes(from_seed.public_key.raw).verify(
        checkpoint.signature, checkpoint.text
    )


def test_production_refuses_the_built_in_signing_key_and_a_malformed_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"SANWU_AUDIT_SIGNING_KEY .* must be set"):
        AuditSettings(environment="production", petitioner_hash_secret="x" * 40)
    with pytest.raises(ValueError, match="base64 of a 32-byte seed"):
        AuditSettings(environment="test", audit_signing_key="not a key")
    key_file = tmp_path / "audit.key"
    key_file.write_text(base64.b64encode(bytes(32)).decode() + "\n", encoding="utf-8")
    production = AuditSettings(
        environment="production",
        petitioner_hash_secret="x" * 40,
        audit_signing_key_file=key_file,
    )
    assert production.signer().public_key.raw == (
        Ed25519PrivateKey.from_private_bytes(bytes(32))
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
