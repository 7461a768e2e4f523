"""A Kafka principal per service, each allowed only what it needs: on a TLS/SCRAM broker of the
test's own (tests/support/secure_kafka.py) with the ACLs deploy/stack.sh grants from
shared/kafka_rights.py, every principal writes every topic and reads every topic in its
groups, and is refused wherever this file's own tables say so. The table itself is checked
against the topics and groups the services' relays and consumers use."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
)

from services.applications import consumers as applications_consumers
from services.applications import main as applications_main
from services.applications.config import ApplicationsSettings
from services.evaluation import main as evaluation_main
from services.evaluation.config import EvaluationSettings
from services.evaluation.consumers import DisputeConsumer, EvaluationConsumer
from services.intake import main as intake_main
from services.intake.case_ratings import CaseRatings
from services.intake.config import IntakeSettings
from services.reporting import consumers as reporting_consumers
from services.reporting.config import ReportingSettings
from shared import kafka, kafka_rights
from shared.consumer import BatchConsumer
from shared.kafka_rights import ADMIN, APPLICATIONS, EVALUATION, INTAKE, REPORTING
from shared.outbox import OutboxRelay
from shared.topic_reading import read_whole
from tests.support.secure_kafka import SecureBroker, secure_kafka
from tests.support.waiting import poll, wait_until

TOPICS = (
    "petition-events",
    "unit-status",
    "unit-indicators",
    "early-warnings",
    "applications",
    "disputes",
    "cases",
    "dead-letter",
)
# What each principal may write: its relays' topics, and dead letters where it consumes.
WRITES = {
    INTAKE: {"petition-events", "dead-letter"},
    EVALUATION: {"unit-status", "unit-indicators", "early-warnings", "dead-letter"},
    REPORTING: {"dead-letter"},
    APPLICATIONS: {"applications", "dead-letter"},
    ADMIN: set(),
}
# What each principal may read, each topic in its own group (the name after the prefix).
READS = {
    INTAKE: {"cases": "intake-case-ratings"},
    EVALUATION: {"petition-events": "evaluation", "disputes": "evaluation-disputes"},
    REPORTING: {
        "unit-status": "reporting",
        "unit-indicators": "reporting-indicators",
        "early-warnings": "reporting-warnings",
        "disputes": "reporting-disputes",
    },
    APPLICATIONS: {"unit-status": "applications", "unit-indicators": "applications-indicators"},
    ADMIN: {},
}
REFUSED = (
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    ClusterAuthorizationFailedError,
)
NOTHING: Any = None  # a collaborator the constructors below only keep


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    with secure_kafka(tmp_path_factory.mktemp("kafka-acls")) as started:
        yield started


@pytest.fixture
async def probed(broker: SecureBroker) -> AsyncIterator[SecureBroker]:
    """The topics exist, each with a message more to read."""
    await kafka.ensure_topics(broker.settings(ADMIN))
    producer = kafka.producer(broker.superuser())
    await producer.start()
    try:
        for topic in TOPICS:
            await producer.send_and_wait(broker.topic_prefix + topic, b"probe", key=b"probe")
    finally:
        await producer.stop()
    yield broker


async def write(broker: SecureBroker, principal: str, topic: str) -> str:
    producer = kafka.producer(broker.settings(principal))
    try:
        await producer.start()
        await producer.send_and_wait(broker.topic_prefix + topic, b"written", key=b"probe")
    except REFUSED:
        return "refused"
    finally:
        await producer.stop()
    return "written"


async def read(broker: SecureBroker, principal: str, topic: str, *, group: str) -> str:
    """Read the topic in the group until a message comes, and commit: "read", or "refused"."""
    consumer = kafka.consumer(
        broker.settings(principal),
        broker.topic_prefix + topic,
        group_id=broker.topic_prefix + group,
    )
    try:
        await consumer.start()
        await poll(
            lambda: consumer.getmany(timeout_ms=200), timeout=20, message=f"a message on {topic}"
        )
        await consumer.commit()
    except REFUSED:
        return "refused"
    finally:
        await consumer.stop()
    return "read"


@pytest.mark.parametrize("principal", list(WRITES))
async def test_a_principal_writes_its_own_topics_and_no_other(
    probed: SecureBroker, principal: str
) -> None:
    outcomes = {topic: await write(probed, principal, topic) for topic in TOPICS}

    assert outcomes == {
        topic: "written" if topic in WRITES[principal] else "refused" for topic in TOPICS
    }


async def test_evaluation_cannot_forge_petition_events(probed: SecureBroker) -> None:
    producer = kafka.producer(probed.settings(EVALUATION))
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(
                probed.topic_prefix + "petition-events", b"forged", key=b"a"
            )
    finally:
        await producer.stop()


@pytest.mark.parametrize("principal", list(READS))
async def test_a_principal_reads_what_it_consumes_in_its_groups_and_nothing_else(
    probed: SecureBroker, principal: str
) -> None:
    own_group = next(iter(READS[principal].values()), principal.removeprefix("sanwu-"))
    outcomes = {
        topic: await read(probed, principal, topic, group=READS[principal].get(topic, own_group))
        for topic in TOPICS
    }

    assert outcomes == {
        topic: "read" if topic in READS[principal] else "refused" for topic in TOPICS
    }


@pytest.mark.parametrize(
    ("principal", "topic", "group"),
    [
        (REPORTING, "unit-status", "applications"),
        (APPLICATIONS, "unit-status", "reporting"),
        (REPORTING, "unit-indicators", "evaluation"),
        (EVALUATION, "petition-events", "reporting"),
    ],
)
async def test_a_consumer_group_belongs_to_one_service(
    probed: SecureBroker, principal: str, topic: str, group: str
) -> None:
    assert await read(probed, principal, topic, group=group) == "refused"


async def test_a_rebuild_reads_a_whole_topic_it_consumes_without_a_group(
    probed: SecureBroker,
) -> None:
    status_topic = probed.topic_prefix + "unit-status"
    chunks = read_whole(probed.settings(REPORTING), status_topic, batch_size=100)

    assert [record.value async for chunk in chunks for record in chunk][:1] == [b"probe"]


async def test_writing_a_topic_does_not_allow_reading_it(probed: SecureBroker) -> None:
    chunks = read_whole(
        probed.settings(INTAKE), probed.topic_prefix + "petition-events", batch_size=100
    )

    with pytest.raises(TopicAuthorizationFailedError):
        [record async for chunk in chunks for record in chunk]


async def test_only_the_admin_creates_the_topics(broker: SecureBroker) -> None:
    superuser = broker.superuser()
    names = {topic.name for topic in kafka.topic_specs(superuser)}

    async def existing() -> set[str]:
        client = kafka.admin(superuser)
        await client.start()
        try:
            return names & set(await client.list_topics())
        finally:
            await client.close()

    async def none_left() -> bool:
        return not await existing()

    await kafka.delete_topics(superuser, list(names))
    await wait_until(none_left, message="the topics to be deleted")
    for service in (INTAKE, EVALUATION, REPORTING, APPLICATIONS):
        await kafka.ensure_topics(broker.settings(service))
    assert await existing() == set()

    await kafka.ensure_topics(broker.settings(ADMIN))
    assert await existing() == names


# --- The table against the code ------------------------------------------------------------

PREFIX = "acl-check."


def uses_of_the_code() -> dict[str, tuple[set[str], set[tuple[str, str]]]]:
    """Per principal, the topics its service's relays and consumers write (a consumer writes
    dead letters) and the (topic, group) pairs its consumers read."""
    intake = IntakeSettings.model_construct(topic_prefix=PREFIX)
    evaluation = EvaluationSettings.model_construct(topic_prefix=PREFIX)
    reporting = ReportingSettings.model_construct(topic_prefix=PREFIX)
    applications = ApplicationsSettings.model_construct(topic_prefix=PREFIX)
    relays: dict[str, list[OutboxRelay]] = {
        INTAKE: [intake_main.relay(NOTHING, intake)],
        EVALUATION: list(evaluation_main.relays(NOTHING, evaluation).values()),
        REPORTING: [],
        APPLICATIONS: [applications_main.relay(NOTHING, applications)],
    }
    consumers: dict[str, list[BatchConsumer[Any, Any]]] = {
        INTAKE: [CaseRatings(db=NOTHING, settings=intake, intake=NOTHING)],
        EVALUATION: [
            EvaluationConsumer(
                db=NOTHING, settings=evaluation, service=NOTHING, registry=NOTHING, clock=NOTHING
            ),
            DisputeConsumer(db=NOTHING, settings=evaluation, service=NOTHING, clock=NOTHING),
        ],
        REPORTING: [
            kind(db=NOTHING, settings=reporting, registry=NOTHING)
            for kind in (
                reporting_consumers.StatusConsumer,
                reporting_consumers.IndicatorConsumer,
                reporting_consumers.WarningConsumer,
                reporting_consumers.DisputeConsumer,
            )
        ],
        APPLICATIONS: [
            applications_consumers.StatusConsumer(db=NOTHING, settings=applications),
            applications_consumers.IndicatorConsumer(db=NOTHING, settings=applications),
        ],
    }
    return {
        principal: (
            {relay.topic for relay in relays[principal]}
            | {c.settings.dead_letter_topic for c in consumers[principal]},
            {(c.topic, c.group_id) for c in consumers[principal]},
        )
        for principal in relays
    }


def allowed(principal: str, resource_type: str, operation: str) -> set[str]:
    return {
        acl.name
        for acl in kafka_rights.acls(PREFIX)
        if acl.principal == principal
        and acl.resource_type == resource_type
        and operation in acl.operations
    }


@pytest.mark.parametrize("principal", [INTAKE, EVALUATION, REPORTING, APPLICATIONS])
def test_a_service_is_granted_exactly_what_its_relays_and_consumers_use(principal: str) -> None:
    writes, reads = uses_of_the_code()[principal]

    assert allowed(principal, "TOPIC", "WRITE") == writes
    assert allowed(principal, "TOPIC", "READ") == {topic for topic, _ in reads}
    assert allowed(principal, "GROUP", "READ") == {group for _, group in reads}
    assert allowed(principal, "TOPIC", "CREATE") == set()


def test_the_admin_creates_every_topic_and_does_nothing_else() -> None:
    topics = {
        t.name for t in kafka.topic_specs(IntakeSettings.model_construct(topic_prefix=PREFIX))
    }

    assert allowed(ADMIN, "TOPIC", "CREATE") == topics
    assert allowed(ADMIN, "TOPIC", "WRITE") | allowed(ADMIN, "TOPIC", "READ") == set()
    assert allowed(ADMIN, "GROUP", "READ") == set()
