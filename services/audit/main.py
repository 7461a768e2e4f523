"""The audit service: one append-only Merkle log of every history record (accepted events and
corrections, application steps, dispute steps, case steps, key operations), signed
checkpoints, and the proofs a city or an inspector checks them with (docs/domain.md section
12)."""

from pathlib import Path

from fastapi import FastAPI

from services.audit.checkpointing import Checkpointer
from services.audit.config import AuditSettings, get_settings
from services.audit.consumers import history_consumers
from services.audit.key_operations import CHANNEL, KeyOperationsDrain
from services.audit.routes import get_inclusion_proof, router
from services.audit.service import AuditLog
from shared import boot
from shared.boot import Blueprint, Clock, Parts, Started
from shared.campaign import system_now
from shared.web import database_ready, kafka_ready

MIGRATIONS = Path(__file__).parent / "migrations"


def blueprint(settings: AuditSettings) -> Blueprint:
    async def assemble(started: Started) -> Parts:
        db = started.db
        audit_log = AuditLog(db=db, signer=settings.signer(), clock=started.clock)
        checkpointer = Checkpointer(
            audit_log, interval_seconds=settings.audit_checkpoint_interval_seconds
        )
        drain = KeyOperationsDrain(
            db=db,
            clock=started.clock,
            poll_seconds=settings.audit_key_operations_poll_seconds,
            on_append=checkpointer.wake,
        )
        consumers = history_consumers(
            db=db, settings=settings, clock=started.clock, on_append=checkpointer.wake
        )
        parts = Parts(
            state={
                "audit_log": audit_log,
                "checkpointer": checkpointer,
                "key_operations": drain,
                "history_consumers": consumers,
            },
            loops={"audit-checkpoints": checkpointer.run, "audit-key-operations": drain.run},
            caches={CHANNEL: drain},
        )
        if settings.audit_run_consumer:
            parts.consumers = dict(consumers)
        return parts

    return Blueprint(
        name="audit",
        title="sanwu audit",
        description="The record an auditor can verify: every accepted event and correction, "
        "every step of an application for the title, every step of a dispute of a counted "
        "event, every step of a case (信访事项) and every key operation, appended once each as "
        "a leaf of one append-only Merkle log (RFC 9162), with signed checkpoints "
        "(Ed25519) and the inclusion and consistency proofs that let a city check the county's "
        "record without trusting its database.",
        migrations=MIGRATIONS,
        assemble=assemble,
        routers=[router],
        served_first=[get_inclusion_proof],
        checks={"database": database_ready},
        reported={"kafka": kafka_ready},
        # the consumers (the events' readers and the three steps' topics), the key operations'
        # drain and the checkpoints, a connection each
        worker_pool_size=settings.audit_event_readers + 5,
    )


def create_app(settings: AuditSettings | None = None, *, clock: Clock = system_now) -> FastAPI:
    settings = settings or get_settings()
    return boot.create_app(blueprint(settings), settings, clock=clock)
