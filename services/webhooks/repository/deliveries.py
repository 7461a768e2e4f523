"""The deliveries: made in sets from a batch of changes, claimed by the dispatcher head by head
(the oldest pending delivery of each subscription's unit), settled one by one. SQL text on the
repository's asyncpg connection: these are the service's hot paths."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from services.webhooks.changes import Change
from shared.repository import Repository, rows_affected

CHANNEL = "webhooks_deliveries"
DELIVERY = "webhooks.delivery"
SUBSCRIPTION = "webhooks.subscription"

# One delivery per change and active subscription of its kind whose scope is the change's unit
# or above it (`chain`: the unit and its ancestors, comma-separated).
ADD_SQL = f"""
    WITH change AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[],
                             $6::timestamptz[]) WITH ORDINALITY
            AS c(kind, message_id, unit_code, chain, body, happened_at, position)
    )
    INSERT INTO {DELIVERY} (subscription_id, message_id, unit_code, body, happened_at,
                            created_at, state, attempts, due_at)
    SELECT s.subscription_id, c.message_id, c.unit_code, c.body, c.happened_at, $7, 'pending',
           0, $7
    FROM change c
    JOIN {SUBSCRIPTION} s
      ON s.state = 'active' AND c.kind = ANY(s.kinds)
     AND (s.scope_code IS NULL OR s.scope_code = ANY(string_to_array(c.chain, ',')))
    ORDER BY c.position, s.subscription_id
    ON CONFLICT ON CONSTRAINT uq_delivery_message DO NOTHING
"""
WAKE_SQL = f"SELECT pg_notify('{CHANNEL}', '')"

# The due heads: a unit's next delivery only once the one before it is delivered or dead. The
# heads are found lane by lane (a loose index scan of the pending index: one probe per
# subscription and unit), not by reading every pending delivery.
HEADS_SQL = f"""
    WITH RECURSIVE lane AS (
        (SELECT subscription_id, unit_code, delivery_id FROM {DELIVERY}
         WHERE state = 'pending'
         ORDER BY subscription_id, unit_code, delivery_id LIMIT 1)
        UNION ALL
        SELECT next.subscription_id, next.unit_code, next.delivery_id
        FROM lane, LATERAL (
            SELECT d.subscription_id, d.unit_code, d.delivery_id FROM {DELIVERY} d
            WHERE d.state = 'pending'
              AND (d.subscription_id, d.unit_code) > (lane.subscription_id, lane.unit_code)
            ORDER BY d.subscription_id, d.unit_code, d.delivery_id LIMIT 1
        ) next
    )
    SELECT d.delivery_id, d.subscription_id
    FROM lane
    JOIN {DELIVERY} d USING (delivery_id)
    JOIN {SUBSCRIPTION} s ON s.subscription_id = d.subscription_id
    WHERE s.state = 'active' AND d.due_at <= $1
      AND (d.leased_until IS NULL OR d.leased_until <= $1)
      AND NOT (d.subscription_id = ANY($2::uuid[]))
    ORDER BY d.due_at, d.delivery_id
    LIMIT $3
"""
CLAIMED = """d.delivery_id, d.subscription_id, d.message_id, d.unit_code, d.body,
              d.happened_at, d.attempts, s.url, s.secret, s.signing_seed, s.previous_secret,
              s.previous_signing_seed, s.previous_until"""
# Leased by one instance only: the condition is checked again under the row's lock.
LEASE_SQL = f"""
    UPDATE {DELIVERY} d SET leased_until = $2
    FROM {SUBSCRIPTION} s
    WHERE d.delivery_id = ANY($1::bigint[]) AND s.subscription_id = d.subscription_id
      AND d.state = 'pending' AND (d.leased_until IS NULL OR d.leased_until <= $3)
    RETURNING {CLAIMED}
"""
# A delivery acknowledged, and the next of its unit leased in the same statement when it is
# due: the sender goes on down the unit without waiting for a round. No other sender can take
# that next one first: until this commits it is not the unit's head, after it is leased.
DELIVERED_SQL = f"""
    WITH done AS (
        UPDATE {DELIVERY} SET state = 'delivered', attempts = attempts + 1,
               leased_until = NULL, last_status = $2, last_error = NULL, finished_at = $3
        WHERE delivery_id = $1 AND state = 'pending'
        RETURNING subscription_id, unit_code, delivery_id
    ), next AS (
        SELECT d.delivery_id FROM {DELIVERY} d, done
        WHERE d.subscription_id = done.subscription_id AND d.unit_code = done.unit_code
          AND d.state = 'pending' AND d.delivery_id > done.delivery_id
        ORDER BY d.delivery_id LIMIT 1
    )
    UPDATE {DELIVERY} d SET leased_until = $4
    FROM next, {SUBSCRIPTION} s
    WHERE d.delivery_id = next.delivery_id AND s.subscription_id = d.subscription_id
      AND s.state = 'active' AND d.due_at <= $3
      AND (d.leased_until IS NULL OR d.leased_until <= $3)
    RETURNING {CLAIMED}
"""
FAILED_SQL = f"""
    UPDATE {DELIVERY} SET state = $2::text, attempts = attempts + 1, leased_until = NULL,
           last_status = $3, last_error = $4, due_at = $5,
           finished_at = CASE WHEN $2::text = 'dead' THEN $6::timestamptz END
    WHERE delivery_id = $1 AND state = 'pending'
"""
DEAD_SQL = f"""
    SELECT delivery_id, message_id, unit_code, body, attempts, last_status, last_error,
           finished_at
    FROM {DELIVERY}
    WHERE subscription_id = $1 AND state = 'dead' AND delivery_id > $2
    ORDER BY delivery_id LIMIT $3
"""
REPLAY_SQL = f"""
    UPDATE {DELIVERY} SET state = 'pending', attempts = 0, due_at = $2, leased_until = NULL,
           finished_at = NULL
    WHERE subscription_id = $1 AND state = 'dead'
      AND ($3::bigint[] IS NULL OR delivery_id = ANY($3::bigint[]))
"""
COUNTS_SQL = f"""
    SELECT state, count(*) AS n FROM {DELIVERY} WHERE subscription_id = $1 GROUP BY state
"""
PURGE_SQL = f"DELETE FROM {DELIVERY} WHERE state = 'delivered' AND finished_at < $1"


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery leased for one attempt, with what sending it needs."""

    delivery_id: int
    subscription_id: UUID
    message_id: str
    unit_code: str
    body: bytes
    happened_at: datetime
    attempts: int  # made before this one
    url: str
    secret: bytes
    signing_seed: bytes
    previous_secret: bytes | None
    previous_signing_seed: bytes | None
    previous_until: datetime | None


@dataclass(frozen=True, slots=True)
class DeadDelivery:
    delivery_id: int
    message_id: str
    unit_code: str
    body: bytes
    attempts: int
    last_status: int | None
    last_error: str | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class Attempt:
    status: int | None
    error: str | None


class DeliveryRepository(Repository):
    async def add(self, changes: Sequence[tuple[Change, str]], *, at: datetime) -> int:
        """A delivery per change and subscription it reaches (each change with its unit's
        chain); returns how many were made (none twice)."""
        if not changes:
            return 0
        status = await self.connection.execute(
            ADD_SQL,
            [c.kind.value for c, _ in changes],
            [c.message_id for c, _ in changes],
            [c.unit_code for c, _ in changes],
            [chain for _, chain in changes],
            [c.body for c, _ in changes],
            [c.happened_at for c, _ in changes],
            at,
        )
        made = rows_affected(status)
        if made:
            await self.connection.execute(WAKE_SQL)
        return made

    async def heads(
        self, *, now: datetime, full: Sequence[UUID], limit: int
    ) -> list[tuple[int, UUID]]:
        rows = await self.connection.fetch(HEADS_SQL, now, list(full), limit)
        return [(row["delivery_id"], row["subscription_id"]) for row in rows]

    async def lease(self, ids: Sequence[int], *, now: datetime, until: datetime) -> list[Claimed]:
        rows = await self.connection.fetch(LEASE_SQL, list(ids), until, now)
        return sorted((Claimed(**dict(row)) for row in rows), key=lambda c: c.delivery_id)

    async def delivered(
        self, delivery_id: int, *, status: int, at: datetime, lease_until: datetime
    ) -> Claimed | None:
        """Acknowledged; returns the next of its unit, leased until `lease_until`, if due."""
        row = await self.connection.fetchrow(DELIVERED_SQL, delivery_id, status, at, lease_until)
        return Claimed(**dict(row)) if row is not None else None

    async def failed(
        self, delivery_id: int, attempt: Attempt, *, retry_at: datetime | None, at: datetime
    ) -> None:
        """Another attempt at `retry_at`, or dead when there is none."""
        state = "pending" if retry_at is not None else "dead"
        await self.connection.execute(
            FAILED_SQL, delivery_id, state, attempt.status, attempt.error, retry_at or at, at
        )

    async def dead(self, subscription_id: UUID, *, after: int, limit: int) -> list[DeadDelivery]:
        rows = await self.connection.fetch(DEAD_SQL, subscription_id, after, limit)
        return [DeadDelivery(**dict(row)) for row in rows]

    async def replay(
        self, subscription_id: UUID, *, ids: Sequence[int] | None, at: datetime
    ) -> int:
        status = await self.connection.execute(
            REPLAY_SQL, subscription_id, at, list(ids) if ids is not None else None
        )
        replayed = rows_affected(status)
        if replayed:
            await self.connection.execute(WAKE_SQL)
        return replayed

    async def counts(self, subscription_id: UUID) -> dict[str, int]:
        rows = await self.connection.fetch(COUNTS_SQL, subscription_id)
        return {row["state"]: row["n"] for row in rows}

    async def purge(self, *, before: datetime) -> int:
        return rows_affected(await self.connection.execute(PURGE_SQL, before))
