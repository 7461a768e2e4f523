"""The key audit's outbox (`access.key_operations_outbox`, filled by a trigger on every row
added to `access.key_audit`): claimed and removed in the transaction that appends them."""

from services.audit.leaves import KeyOperation
from shared.repository import Repository

OUTBOX = "access.key_operations_outbox"
CLAIM_SQL = f"""
    DELETE FROM {OUTBOX} WHERE audit_id IN (
        SELECT audit_id FROM {OUTBOX} ORDER BY audit_id LIMIT $1 FOR UPDATE SKIP LOCKED
    )
    RETURNING audit_id, at, action, key_id, role, scope_code, actor
"""
PENDING_SQL = f"SELECT count(*) FROM {OUTBOX}"


class KeyOperationsRepository(Repository):
    async def claim(self, limit: int) -> list[KeyOperation]:
        """Up to `limit` waiting operations, removed from the outbox (for good once the
        transaction commits), oldest first."""
        rows = await self.connection.fetch(CLAIM_SQL, limit)
        operations = [
            KeyOperation(
                audit_id=r["audit_id"],
                at=r["at"],
                action=r["action"],
                key_id=r["key_id"],
                role=r["role"],
                scope_code=r["scope_code"],
                actor=r["actor"],
            )
            for r in rows
        ]
        return sorted(operations, key=lambda operation: operation.audit_id)

    async def pending(self) -> int:
        count: int = await self.connection.fetchval(PENDING_SQL)
        return count
