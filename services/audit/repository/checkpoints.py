"""The checkpoints the log signed, kept forever."""

from services.audit.checkpoints import Checkpoint
from services.audit.models import checkpoint
from shared.repository import Repository

COLUMNS = "origin, size, root_hash, signed_at, key_id, signature"
ADD_SQL = f"INSERT INTO {checkpoint.fullname} ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
LATEST_SQL = f"SELECT {COLUMNS} FROM {checkpoint.fullname} ORDER BY checkpoint_id DESC LIMIT 1"
ALL_SQL = f"SELECT {COLUMNS} FROM {checkpoint.fullname} ORDER BY checkpoint_id"


def _checkpoint(row: object) -> Checkpoint:
    r = dict(row)  # type: ignore[call-overload]
    return Checkpoint(
        origin=r["origin"],
        size=r["size"],
        root_hash=bytes(r["root_hash"]),
        time=r["signed_at"],
        key_id=r["key_id"],
        signature=bytes(r["signature"]),
    )


class CheckpointsRepository(Repository):
    async def add(self, signed: Checkpoint) -> None:
        await self.connection.execute(
            ADD_SQL,
            signed.origin,
            signed.size,
            signed.root_hash,
            signed.time,
            signed.key_id,
            signed.signature,
        )

    async def latest(self) -> Checkpoint | None:
        row = await self.connection.fetchrow(LATEST_SQL)
        return None if row is None else _checkpoint(row)

    async def every(self) -> list[Checkpoint]:
        return [_checkpoint(row) for row in await self.connection.fetch(ALL_SQL)]
