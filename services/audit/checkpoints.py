"""Signed checkpoints: the log's size and root at a moment, signed with Ed25519.

The signature is over this text, UTF-8, each line ending in a newline (the C2SP checkpoint
form: origin, size, root, then one extension line for the time):

    <origin>
    <size, decimal>
    <root hash, standard base64 with padding>
    time <moment, UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ>

The origin names the log (`SANWU_AUDIT_ORIGIN`, for example `zongyang.example.cn/audit`), so a
checkpoint of one county's log cannot pass for another's. A key's id is the first 8 bytes of
the SHA-256 of its raw 32-byte public key, in hex."""

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.audit.leaves import moment

ALGORITHM = "Ed25519"
SEED_BYTES = 32


class CheckpointRefused(Exception):
    """A checkpoint that does not hold: a bad signature, another key, a malformed field."""


def b64(value: bytes) -> str:
    return binascii.b2a_base64(value, newline=False).decode("ascii")


def unb64(value: str, *, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointRefused(f"{what} is not base64") from None


def key_id_of(public_key: bytes) -> str:
    return hashlib.sha256(public_key).digest()[:8].hex()


def signed_text(*, origin: str, size: int, root_hash: bytes, time: datetime) -> bytes:
    return f"{origin}\n{size}\n{b64(root_hash)}\ntime {moment(time)}\n".encode()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    time: datetime
    key_id: str
    signature: bytes

    @property
    def text(self) -> bytes:
        return signed_text(
            origin=self.origin, size=self.size, root_hash=self.root_hash, time=self.time
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "size": self.size,
            "root_hash": b64(self.root_hash),
            "time": moment(self.time),
            "key_id": self.key_id,
            "signature": b64(self.signature),
        }

    @classmethod
    def from_json(cls, value: Any) -> "Checkpoint":
        """A checkpoint as the log serves it; CheckpointRefused naming what is wrong."""
        if not isinstance(value, dict):
            raise CheckpointRefused("a checkpoint is a JSON object")
        try:
            size = value["size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise CheckpointRefused("the checkpoint's size is not a whole number")
            return cls(
                origin=str(value["origin"]),
                size=size,
                root_hash=unb64(str(value["root_hash"]), what="the checkpoint's root_hash"),
                time=datetime.fromisoformat(str(value["time"])),
                key_id=str(value["key_id"]),
                signature=unb64(str(value["signature"]), what="the checkpoint's signature"),
            )
        except KeyError as exc:
            raise CheckpointRefused(f"the checkpoint has no {exc.args[0]}") from None
        except ValueError as exc:
            raise CheckpointRefused(f"the checkpoint's time is not a moment: {exc}") from None

    def describe(self) -> str:
        return f"size {self.size}, root {b64(self.root_hash)}, {moment(self.time)}"


@dataclass(frozen=True)
class PublicKey:
    origin: str
    raw: bytes  # the 32-byte Ed25519 public key

    @property
    def key_id(self) -> str:
        return key_id_of(self.raw)

    def as_json(self) -> dict[str, str]:
        return {
            "origin": self.origin,
            "algorithm": ALGORITHM,
            "key_id": self.key_id,
            "public_key": b64(self.raw),
        }

    @classmethod
    def from_json(cls, value: Any) -> "PublicKey":
        if not isinstance(value, dict) or value.get("algorithm") != ALGORITHM:
            raise CheckpointRefused(f"not an {ALGORITHM} public key")
        raw = unb64(str(value.get("public_key", "")), what="the public key")
        if len(raw) != SEED_BYTES:
            raise CheckpointRefused(f"an {ALGORITHM} public key has {SEED_BYTES} bytes")
        return cls(origin=str(value.get("origin", "")), raw=raw)

    def verify(self, checkpoint: Checkpoint) -> None:
        """That the checkpoint is this log's, signed with this key."""
        if checkpoint.origin != self.origin:
            raise CheckpointRefused(
                f"the checkpoint is of log {checkpoint.origin!r}, not {self.origin!r}"
            )
        if checkpoint.key_id != self.key_id:
            raise CheckpointRefused(
                f"the checkpoint names key {checkpoint.key_id}, not the log's key {self.key_id}"
            )
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(
                checkpoint.signature, checkpoint.text
            )
        except InvalidSignature:
            raise CheckpointRefused(
                f"the signature of the checkpoint ({checkpoint.describe()}) does not verify "
                f"under key {self.key_id}"
            ) from None


class Signer:
    def __init__(self, private_key: Ed25519PrivateKey, *, origin: str) -> None:
        self._key = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_key = PublicKey(origin=origin, raw=raw)

    @classmethod
    def from_text(cls, text: str, *, origin: str) -> "Signer":
        return cls(private_key_of(text), origin=origin)

    def sign(self, *, size: int, root_hash: bytes, time: datetime) -> Checkpoint:
        origin = self.public_key.origin
        text = signed_text(origin=origin, size=size, root_hash=root_hash, time=time)
        return Checkpoint(
            origin=origin,
            size=size,
            root_hash=root_hash,
            time=time,
            key_id=self.public_key.key_id,
            signature=self._key.sign(text),
        )


def private_key_of(text: str) -> Ed25519PrivateKey:
    """A private key from a PEM PKCS#8 text (`openssl genpkey -algorithm ed25519`) or the
    base64 of its 32-byte seed; ValueError saying which form was expected."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the PEM key is not an Ed25519 key")
        return key
    try:
        seed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        seed = b""
    if len(seed) != SEED_BYTES:
        raise ValueError(
            f"not a PEM Ed25519 private key nor the base64 of a {SEED_BYTES}-byte seed"
        )
    return Ed25519PrivateKey.from_private_bytes(seed)
