"""Standard Webhooks signatures: `v1` (HMAC-SHA256 with the subscription's `whsec_` secret)
and `v1a` (Ed25519, verified with the `whpk_` public key), over `{webhook-id}.{timestamp}.{body}`.
A subscription holds one pair of keys, two during a rotation's overlap; every delivery carries
a signature of each."""

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SECRET_PREFIX = "whsec_"
PUBLIC_KEY_PREFIX = "whpk_"
SECRET_BYTES = 32
# The sizes Standard Webhooks allows a symmetric secret.
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_bytes(text: str) -> bytes:
    """The key a `whsec_` secret names; ValueError for anything else."""
    if not text.startswith(SECRET_PREFIX):
        raise ValueError(f"a secret starts with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(text.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a secret is whsec_ and base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(f"a secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return key


def new_signing_seed() -> bytes:
    return secrets.token_bytes(32)


def public_key(seed: bytes) -> str:
    """The `whpk_` public key a receiver checks `v1a` signatures with."""
    raw = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return (
        PUBLIC_KEY_PREFIX
        + base64.b64encode(raw.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    )


@dataclass(frozen=True, slots=True)
class SigningKeys:
    secret: bytes  # HMAC key (the bytes of the whsec_ secret)
    seed: bytes  # Ed25519 private key

    def signatures(self, content: bytes) -> list[str]:
        mac = hmac.new(self.secret, content, hashlib.sha256).digest()
        signed = Ed25519PrivateKey.from_private_bytes(self.seed).sign(content)
        return [f"v1,{base64.b64encode(mac).decode()}", f"v1a,{base64.b64encode(signed).decode()}"]


def signature_header(
    *, message_id: str, timestamp: int, body: bytes, keys: list[SigningKeys]
) -> str:
    """`webhook-signature`: the signatures of every key pair in force, space-separated."""
    content = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(signature for pair in keys for signature in pair.signatures(content))
