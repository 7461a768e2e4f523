"""What the audit API returns (docs/api.md, "Audit service"): hashes and signatures in
standard base64 with padding, moments as the checkpoints' text writes them."""

from pydantic import BaseModel, ConfigDict, Field

from services.audit.checkpoints import Checkpoint, PublicKey, b64
from services.audit.repository import StoredLeaf


class CheckpointOut(BaseModel):
    origin: str = Field(description="The log's name, the first line of the signed text")
    size: int = Field(description="How many leaves the checkpoint covers")
    root_hash: str = Field(description="The root of the tree of those leaves (base64)")
    time: str = Field(description="When it was signed (UTC)")
    key_id: str = Field(description="The id of the key it is signed with (`public-key`)")
    signature: str = Field(description="Ed25519 over the checkpoint's text form (base64)")

    @classmethod
    def of(cls, checkpoint: Checkpoint) -> "CheckpointOut":
        return cls.model_validate(checkpoint.as_json())


class PublicKeyOut(BaseModel):
    origin: str
    algorithm: str = Field(examples=["Ed25519"])
    key_id: str
    public_key: str = Field(description="The raw 32-byte public key (base64)")

    @classmethod
    def of(cls, key: PublicKey) -> "PublicKeyOut":
        return cls.model_validate(key.as_json())


class EntryOut(BaseModel):
    index: int
    leaf: str = Field(
        description="The canonical JSON (RFC 8785) whose UTF-8 bytes are the leaf: its hash "
        "is SHA-256 of 0x00 followed by them"
    )


class EntriesOut(BaseModel):
    entries: list[EntryOut]

    @classmethod
    def of(cls, stored: list[StoredLeaf]) -> "EntriesOut":
        return cls(entries=[EntryOut(index=s.index, leaf=s.body) for s in stored])


class LeafIndexOut(BaseModel):
    kind: str
    id: str
    index: int


class InclusionProofOut(BaseModel):
    index: int
    size: int
    hashes: list[str] = Field(description="RFC 9162 section 2.1.3, base64, nearest first")


class ConsistencyProofOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: int = Field(alias="from")
    to: int
    hashes: list[str] = Field(description="RFC 9162 section 2.1.4, base64")


def hashes_out(hashes: list[bytes]) -> list[str]:
    return [b64(value) for value in hashes]
