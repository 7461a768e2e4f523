"""The history topics the log reads, each as a consumer group of its own on the shared
consumer loop (`shared.consumer`): the petition events (every accepted event and correction,
`parse_event_record`; `SANWU_AUDIT_EVENT_READERS` members in the process), the application
steps (`parse_application_step`), the dispute steps (`parse_dispute_step`) and the case steps
(`parse_case_step`). Each record becomes its leaf (`services.audit.leaves`); a batch's leaves
are appended in one transaction, and the offsets are committed after it. A batch read again (a
crash between the two, a redelivery, a replay from the start) finds its leaves in the log and
appends nothing."""

from collections.abc import Callable, Sequence

import orjson
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.config import AuditSettings
from services.audit.leaves import (
    CaseStepFacts,
    DisputeStepFacts,
    Leaf,
    application_step_leaf,
    case_step_leaf,
    dispute_step_leaf,
    event_leaf,
)
from services.audit.repository import LogRepository
from services.audit.service import Appended, Clock, append
from shared.consumer import (
    BatchConsumer,
    Counters,
    DeadLetter,
    Record,
    Rejected,
    crash_on_purpose,
)
from shared.db import Database
from shared.messages import (
    parse_application_step,
    parse_case_step,
    parse_dispute_step,
    parse_event_record,
)

COUNTERS = Counters(
    applied=Counter("sanwu_audit_records_appended_total", "Records appended as leaves"),
    ignored=Counter("sanwu_audit_records_ignored_total", "Records whose leaf the log held already"),
    dead_letters=Counter(
        "sanwu_audit_dead_letters_total", "Malformed history messages sent to the dead letters"
    ),
)


def event_record_leaf(record: Record) -> Leaf | Rejected:
    """The leaf of an accepted event: its payload as published, not as the model would write
    it again, so that the journal row (the same JSON) makes the same leaf."""
    parsed = parse_event_record(record)
    if isinstance(parsed, Rejected):
        return parsed
    assert record.value is not None  # the parser refuses a tombstone
    return event_leaf(
        event_id=parsed.event_id,
        payload=orjson.loads(record.value)["event"],
        accepted_at=parsed.accepted_at,
        key_id=parsed.key_id,
    )


def application_step_record_leaf(record: Record) -> Leaf | Rejected:
    parsed = parse_application_step(record)
    return parsed if isinstance(parsed, Rejected) else application_step_leaf(parsed)


def dispute_step_record_leaf(record: Record) -> Leaf | Rejected:
    parsed = parse_dispute_step(record)
    if isinstance(parsed, Rejected):
        return parsed
    return dispute_step_leaf(DisputeStepFacts.of(parsed))


def case_step_record_leaf(record: Record) -> Leaf | Rejected:
    parsed = parse_case_step(record)
    if isinstance(parsed, Rejected):
        return parsed
    return case_step_leaf(CaseStepFacts.of(parsed))


class HistoryConsumer(BatchConsumer[Leaf, Appended]):
    def __init__(
        self,
        *,
        name: str,
        group: str,
        topic: str,
        leaf_of: Callable[[Record], Leaf | Rejected],
        db: Database,
        settings: AuditSettings,
        clock: Clock,
        on_append: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(
            name=name,
            db=db,
            settings=settings,
            topic=topic,
            group_id=f"{settings.consumer_group}-{group}",
            batch_size=settings.audit_batch_size,
            max_partition_fetch_bytes=settings.audit_fetch_bytes,
            # Decoding reads nothing appending writes: the next batch's leaves are made while
            # the database appends this one's.
            decode_ahead=True,
        )
        self.settings: AuditSettings = settings
        self.leaf_of = leaf_of
        self.clock = clock
        self.on_append = on_append  # after each commit that appended leaves (the checkpoints)

    async def decode(self, record: Record) -> Leaf | Rejected:
        return self.leaf_of(record)

    async def apply(self, session: AsyncSession, items: Sequence[Leaf]) -> Appended:
        log = await LogRepository.from_session(session)
        appended = await append(log, items, at=self.clock())
        self._maybe_crash("before_commit", appended)
        return appended

    def committed(self, result: Appended) -> None:
        self._maybe_crash("after_commit", result)
        COUNTERS.count(result)
        if result.appended:
            self.on_append()

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        COUNTERS.count_dead(letters)

    def _maybe_crash(self, point: str, appended: Appended) -> None:
        if self.settings.audit_crash_at == point and appended.appended:
            crash_on_purpose(point, leaves=appended.appended)


def history_consumers(
    *, db: Database, settings: AuditSettings, clock: Clock, on_append: Callable[[], None]
) -> dict[str, HistoryConsumer]:
    """The consumers of the history topics, by task name: `audit_event_readers` members of
    the petition events' group (`audit-events`, `audit-events-2`, ...), one of the
    application steps', one of the dispute steps' and one of the case steps'."""
    readers = [
        (
            f"audit-events{'' if n == 1 else f'-{n}'}",
            "events",
            settings.events_topic,
            event_record_leaf,
        )
        for n in range(1, settings.audit_event_readers + 1)
    ]
    steps = [
        (
            "audit-applications",
            "applications",
            settings.application_topic,
            application_step_record_leaf,
        ),
        ("audit-disputes", "disputes", settings.disputes_topic, dispute_step_record_leaf),
        ("audit-cases", "cases", settings.cases_topic, case_step_record_leaf),
    ]
    return {
        name: HistoryConsumer(
            name=name,
            group=group,
            topic=topic,
            leaf_of=leaf_of,
            db=db,
            settings=settings,
            clock=clock,
            on_append=on_append,
        )
        for name, group, topic, leaf_of in [*readers, *steps]
    }
