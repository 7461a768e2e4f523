"""Dispute steps as the cases service publishes them, for tests of the services that read the
disputes topic without the cases service running."""

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from shared import kafka
from shared.config import Settings
from shared.dispute_steps import Dispute, DisputeStep, Ruling, State, Step

COUNTY_BUREAU = "340722000000"
CITY_BUREAU = "340700000000"
_step_ids = itertools.count(1_000_000)


@dataclass
class DisputeStory:
    """One dispute of an event, step by step: each call gives the message of the next step."""

    event_id: str
    unit_code: str
    dispute_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    version: int = 0
    decision: Ruling | None = None
    review: Ruling | None = None

    def filed(self) -> DisputeStep:
        return self._step(State.filed, "filed")

    def decided(self, decision: str, new_unit: str | None = None) -> DisputeStep:
        self.decision = _ruling(decision, new_unit, COUNTY_BUREAU)
        return self._step(State.decided, "decided")

    def review_requested(self) -> DisputeStep:
        return self._step(State.review_requested, "review_requested")

    def reviewed(self, decision: str, new_unit: str | None = None) -> DisputeStep:
        self.review = _ruling(decision, new_unit, CITY_BUREAU)
        return self._step(State.reviewed, "reviewed")

    def withdrawn(self) -> DisputeStep:
        return self._step(State.withdrawn, "withdrawn")

    def _step(self, state: State, action: str) -> DisputeStep:
        self.version += 1
        now = datetime.now(UTC)
        dispute = Dispute(
            dispute_id=uuid.UUID(self.dispute_id),
            event_id=uuid.UUID(self.event_id),
            unit_code=self.unit_code,
            grounds="facts",
            proposed_unit=None,
            duplicate_of=None,
            statement="当日无人上访",
            filer_scope=self.unit_code,
            decider_code=COUNTY_BUREAU,
            state=state,
            decision=self.decision,
            review_request_until=None,
            review=self.review,
            version=self.version,
            filed_at=now,
            changed_at=now,
        )
        step = Step(
            version=self.version,
            action=action,
            at=now,
            key_id="test00000000",
            role="bureau",
            scope_code=COUNTY_BUREAU,
            reason="核查",
            detail={},
        )
        return DisputeStep(step_id=next(_step_ids), dispute=dispute, step=step)


def _ruling(decision: str, new_unit: str | None, by: str) -> Ruling:
    return Ruling(decision=decision, new_unit=new_unit, reason="核查", by=by, at=datetime.now(UTC))


async def publish(settings: Settings, *steps: DisputeStep, **overrides: Any) -> None:
    """Onto the settings' disputes topic, keyed by event as the cases service keys them."""
    producer: AIOKafkaProducer = kafka.producer(settings, **overrides)
    await producer.start()
    try:
        for step in steps:
            await producer.send_and_wait(
                settings.disputes_topic, step.model_dump_json().encode(), key=step.key
            )
    finally:
        await producer.stop()
