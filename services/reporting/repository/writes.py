"""The lock every writer of the read model takes, and the notifications its commits send."""

from collections.abc import Collection

from services.reporting.cache import CHANNEL, STATUS_CHANNEL, StatusKey, status_payload
from shared.locks import LockName, lock_key
from shared.repository import Repository

# Every transaction that writes the read model (the consumers of all instances, the registry
# follower, a rebuild's swap) takes this lock first, so writers run one at a time. A change's
# seq is max + 1 taken under the lock, so seq order is commit order; PostgreSQL releases the
# lock only after the commit is visible, so a reader that sees a seq also sees every lower one
# and a cursor never passes a change that commits later.
APPLY_LOCK = lock_key(LockName.reporting_apply)
LOCK_SQL = "SELECT pg_advisory_xact_lock($1)"
NOTIFY_SQL = "SELECT pg_notify($1, $2)"
NOTIFY_BOTH_SQL = "SELECT pg_notify($1, $2), pg_notify($3, $4)"


class ReadModelWrites(Repository):
    """In the writing transaction's session (`await ReadModelWrites.from_session(session)`)."""

    async def lock_writes(self) -> None:
        await self.connection.execute(LOCK_SQL, APPLY_LOCK)

    async def announce_change(self, *, statuses: Collection[StatusKey] | None = ()) -> None:
        """Tell every instance, when this transaction commits, that the read model changed,
        and which statuses changed (None: any of them)."""
        if statuses is None or statuses:
            await self.connection.execute(
                NOTIFY_BOTH_SQL, CHANNEL, "", STATUS_CHANNEL, status_payload(statuses)
            )
        else:
            await self.connection.execute(NOTIFY_SQL, CHANNEL, "")

    async def announce_statuses(self, statuses: Collection[StatusKey] | None) -> None:
        """Tell every instance, when this transaction commits, which statuses read differently
        now (None: any of them), and nothing else."""
        if statuses is None or statuses:
            await self.connection.execute(NOTIFY_SQL, STATUS_CHANNEL, status_payload(statuses))
