"""The audit API: the log's checkpoint and key, its entries, a record's leaf and the proofs.
Any valid key may read the log: its leaves carry no free text and no reference in clear."""

import binascii
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import Field, TypeAdapter, ValidationError

from services.audit.leaves import LeafKind
from services.audit.schemas import (
    CheckpointOut,
    ConsistencyProofOut,
    EntriesOut,
    InclusionProofOut,
    LeafIndexOut,
    PublicKeyOut,
    hashes_out,
)
from services.audit.service import MAX_ENTRIES, AuditLog
from shared.web import PrincipalDep, get_principal

router = APIRouter(prefix="/v1/log", tags=["audit"])
# A leaf's position: within a bigint, and far beyond any log.
MAX_POSITION = 2**53
DIGITS = len(str(MAX_POSITION))  # fewer digits than that: a number below MAX_POSITION
Position = Annotated[int, Query(ge=0, le=MAX_POSITION)]
Size = Annotated[int, Query(ge=1, le=MAX_POSITION)]


@dataclass(frozen=True)
class QueryNumber:
    """An integer query parameter the hottest route reads itself (`read`) and documents with
    `openapi_extra` (`documented`) exactly as FastAPI documents a declared one: resolving
    declared parameters cost more of a proof's CPU than making the proof. A bad value is a 422
    naming the parameter, with pydantic's error types, as FastAPI would answer."""

    name: str
    minimum: int

    @cached_property
    def _adapter(self) -> TypeAdapter[int]:
        return TypeAdapter(Annotated[int, Field(ge=self.minimum, le=MAX_POSITION)])

    def read(self, request: Request, errors: list[dict[str, Any]]) -> int:
        """The value, or 0 with its errors added to `errors`."""
        raw = request.query_params.get(self.name)
        if raw is not None and raw.isascii() and raw.isdigit() and len(raw) < DIGITS:
            value = int(raw)  # what the adapter makes of plain digits, without its call
            if value >= self.minimum:
                return value
        if raw is None:
            problems: list[Any] = [{"type": "missing", "loc": (), "msg": "Field required"}]
        else:
            try:
                return self._adapter.validate_python(raw)
            except ValidationError as exc:
                problems = exc.errors()
        errors += [{**e, "loc": ("query", self.name, *e["loc"])} for e in problems]
        return 0

    def documented(self) -> dict[str, Any]:
        schema = {
            "maximum": MAX_POSITION,
            "minimum": self.minimum,
            "title": self.name.title(),
            "type": "integer",
        }
        return {"name": self.name, "in": "query", "required": True, "schema": schema}


INDEX = QueryNumber("index", minimum=0)
SIZE = QueryNumber("size", minimum=1)


def audit_log(request: Request) -> AuditLog:
    found: AuditLog = request.app.state.audit_log
    return found


@router.get(
    "/checkpoint",
    response_model=CheckpointOut,
    responses={503: {"description": "No checkpoint signed yet (a new log, the first second)"}},
    summary="The latest signed checkpoint",
    description="The log's size and root hash at a moment, signed with Ed25519 over the text "
    "`<origin>\\n<size>\\n<base64 root>\\ntime <UTC moment>\\n`. "
    "Keep it: a later checkpoint must be consistent with it (`proof/consistency`).",
    operation_id="getCheckpoint",
)
async def get_checkpoint(_: PrincipalDep, request: Request) -> CheckpointOut:
    return CheckpointOut.of(await audit_log(request).checkpoint())


@router.get(
    "/public-key",
    response_model=PublicKeyOut,
    summary="The key checkpoints are signed with",
    description="The raw Ed25519 public key in base64 and its id (the first 8 bytes of its "
    "SHA-256, in hex). Compare it with the key the log's operators published.",
    operation_id="getLogPublicKey",
)
async def get_public_key(_: PrincipalDep, request: Request) -> PublicKeyOut:
    return PublicKeyOut.of(audit_log(request).public_key)


@router.get(
    "/entries",
    response_model=EntriesOut,
    summary="The leaves at positions start to end (end excluded)",
    description=f"At most {MAX_ENTRIES} at once; positions past the log's end are left out. "
    "Each leaf is the canonical JSON (RFC 8785) of one history record.",
    operation_id="getLogEntries",
)
async def get_entries(
    _: PrincipalDep, request: Request, start: Position, end: Position
) -> EntriesOut:
    return EntriesOut.of(await audit_log(request).entries(start, end))


@router.get(
    "/leaf/{kind}/{id}",
    response_model=LeafIndexOut,
    responses={404: {"description": "The log holds no leaf of that record (yet)"}},
    summary="The position of a record's leaf",
    description="`kind`: `event` (an accepted event or correction, by event id), "
    "`application_step` (by step id), `dispute_step` (by step id), `case_step` (by step id) "
    "or `key_operation` (by the key audit's id).",
    operation_id="getLeafIndex",
)
async def get_leaf(
    _: PrincipalDep,
    request: Request,
    kind: LeafKind,
    id: Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[0-9A-Za-z-]+$")],
) -> LeafIndexOut:
    index = await audit_log(request).index_of(kind.value, id)
    return LeafIndexOut(kind=kind.value, id=id, index=index)


@router.get(
    "/proof/inclusion",
    response_model=InclusionProofOut,
    summary="That the leaf at `index` is in the tree of `size` leaves",
    description="RFC 9162 section 2.1.3: the hashes from the leaf's sibling up to the root. "
    "`size` is a checkpoint's size; it may not pass the log's size.",
    operation_id="getInclusionProof",
    openapi_extra={"parameters": [INDEX.documented(), SIZE.documented()]},
)
async def get_inclusion_proof(request: Request) -> Response:
    # The hottest read of the log: its parameters read and its answer written here (the key
    # first, as a dependency would be) rather than declared and rendered by the response model.
    await get_principal(request)
    errors: list[dict[str, Any]] = []
    index, size = INDEX.read(request, errors), SIZE.read(request, errors)
    if errors:
        raise RequestValidationError(errors)
    proof = await audit_log(request).inclusion(index, size)
    hashes = b'","'.join(binascii.b2a_base64(value, newline=False) for value in proof.hashes)
    body = b'{"index":%d,"size":%d,"hashes":["%s"]}' % (index, size, hashes)
    return Response(body, media_type="application/json")


@router.get(
    "/proof/consistency",
    response_model=ConsistencyProofOut,
    summary="That the tree of `to` leaves extends the tree of `from` leaves",
    description="RFC 9162 section 2.1.4; 1 ≤ from ≤ to ≤ the log's size.",
    operation_id="getConsistencyProof",
)
async def get_consistency_proof(
    _: PrincipalDep,
    request: Request,
    old: Annotated[int, Query(alias="from", ge=1, le=MAX_POSITION)],
    to: Size,
) -> ConsistencyProofOut:
    proof = await audit_log(request).consistency(old, to)
    return ConsistencyProofOut(from_=old, to=to, hashes=hashes_out(proof.hashes))
