"""Who may do what on Kafka: a principal (a SCRAM user) per service, each writing only its own
topics and reading only the topics it consumes, in its own consumer groups; `sanwu-admin`
creates the topics (`sanwu topics ensure`), and no service may. The console uses no Kafka.

`RIGHTS` is the one table; `acls(topic_prefix)` renders it as the ACLs a cluster grants for
topics under that prefix (literal names only: a principal gains nothing from a topic or group
someone else names like its own). deploy/stack.sh grants them on the local TLS/SCRAM stack
(`python -m shared.kafka_grants grant`); the Strimzi KafkaUser resources state the same.

Why each right: a relay (`shared/outbox/relay.py`) writes its outbox's topic; a consumer
(`shared/consumer.py`) reads its topic in its group and writes what it cannot apply to the
dead-letter topic; a rebuild reads whole topics without a group (`shared/topic_reading.py`). An
idempotent producer needs WRITE on some topic, no cluster right. READ and WRITE imply
DESCRIBE; it is listed for whoever reads the table."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from shared.config import Settings

INTAKE = "sanwu-intake"
EVALUATION = "sanwu-evaluation"
REPORTING = "sanwu-reporting"
APPLICATIONS = "sanwu-applications"
AUDIT = "sanwu-audit"
CASES = "sanwu-cases"
WEBHOOKS = "sanwu-webhooks"
ADMIN = "sanwu-admin"

# Topics by their property on `Settings` (shared/config.py), which names them under the prefix.
EVENTS = "events_topic"
STATUSES = "status_topic"
INDICATORS = "indicator_topic"
WARNINGS = "warning_topic"
APPLICATION_STEPS = "application_topic"
DEAD_LETTERS = "dead_letter_topic"
DISPUTE_STEPS = "disputes_topic"
CASE_STEPS = "cases_topic"
TOPICS = (
    EVENTS,
    STATUSES,
    INDICATORS,
    WARNINGS,
    APPLICATION_STEPS,
    DISPUTE_STEPS,
    CASE_STEPS,
    DEAD_LETTERS,
)

WRITE = ("WRITE", "DESCRIBE")
READ = ("READ", "DESCRIBE")
CREATE = ("CREATE", "DESCRIBE")


@dataclass(frozen=True)
class Rights:
    """A principal's rights: topics by their `Settings` property, groups by their name after
    the topic prefix (the services' defaults: `ReportingSettings.consumer_group` and the rest)."""

    writes: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    creates: tuple[str, ...] = ()


RIGHTS: dict[str, Rights] = {
    # The ratings of cases are work records: intake reads them from the cases topic.
    INTAKE: Rights(
        writes=(EVENTS, DEAD_LETTERS), reads=(CASE_STEPS,), groups=("intake-case-ratings",)
    ),
    EVALUATION: Rights(
        writes=(STATUSES, INDICATORS, WARNINGS, DEAD_LETTERS),
        reads=(EVENTS, DISPUTE_STEPS),
        groups=("evaluation", "evaluation-disputes"),
    ),
    REPORTING: Rights(
        writes=(DEAD_LETTERS,),
        reads=(STATUSES, INDICATORS, WARNINGS, DISPUTE_STEPS),
        groups=("reporting", "reporting-indicators", "reporting-warnings", "reporting-disputes"),
    ),
    APPLICATIONS: Rights(
        writes=(APPLICATION_STEPS, DEAD_LETTERS),
        reads=(STATUSES, INDICATORS),
        groups=("applications", "applications-indicators"),
    ),
    AUDIT: Rights(
        writes=(DEAD_LETTERS,),
        reads=(EVENTS, APPLICATION_STEPS, DISPUTE_STEPS, CASE_STEPS),
        groups=("audit-events", "audit-applications", "audit-disputes", "audit-cases"),
    ),
    CASES: Rights(
        writes=(DISPUTE_STEPS, CASE_STEPS, WARNINGS, DEAD_LETTERS),
        reads=(EVENTS,),
        groups=("cases-events",),
    ),
    # Subscribers hear of these changes: a consumer group per topic.
    WEBHOOKS: Rights(
        writes=(DEAD_LETTERS,),
        reads=(STATUSES, WARNINGS, APPLICATION_STEPS, DISPUTE_STEPS, CASE_STEPS),
        groups=(
            "webhooks-status-changes",
            "webhooks-warnings",
            "webhooks-application-steps",
            "webhooks-dispute-steps",
            "webhooks-case-steps",
        ),
    ),
    ADMIN: Rights(creates=TOPICS),
}
PRINCIPALS = tuple(RIGHTS)


class Acl(NamedTuple):
    """One ALLOW entry, from any host, in Kafka's names: `principal` is the SCRAM user
    (User:<principal>), `resource_type` TOPIC or GROUP, `pattern_type` LITERAL."""

    principal: str
    resource_type: str
    pattern_type: str
    name: str
    operations: tuple[str, ...]


def topic_name(topic: str, topic_prefix: str) -> str:
    """The topic's name under the prefix, as every client of it names it."""
    name: str = getattr(Settings.model_construct(topic_prefix=topic_prefix), topic)
    return name


def acls(topic_prefix: str) -> list[Acl]:
    """Every principal's ACLs for the topics and groups under `topic_prefix`."""
    return [acl for principal in RIGHTS for acl in acls_of(principal, topic_prefix)]


def acls_of(principal: str, topic_prefix: str) -> list[Acl]:
    rights = RIGHTS[principal]

    def entries(kind: str, names: Iterable[str], operations: tuple[str, ...]) -> list[Acl]:
        return [Acl(principal, kind, "LITERAL", name, operations) for name in names]

    def topics(which: tuple[str, ...]) -> list[str]:
        return [topic_name(topic, topic_prefix) for topic in which]

    return [
        *entries("TOPIC", topics(rights.writes), WRITE),
        *entries("TOPIC", topics(rights.reads), READ),
        *entries("GROUP", [topic_prefix + group for group in rights.groups], READ),
        *entries("TOPIC", topics(rights.creates), CREATE),
    ]


def markdown(topic_prefix: str = "sanwu.") -> str:
    """The table as SECURITY.md shows it, a row per principal (every name literal)."""

    def names(found: Iterable[str]) -> str:
        return ", ".join(f"`{name}`" for name in found) or "-"

    lines = [
        "| principal | writes | reads | consumer groups | creates |",
        "|---|---|---|---|---|",
    ]
    for principal, rights in RIGHTS.items():
        cells = [
            names(topic_name(t, topic_prefix) for t in rights.writes),
            names(topic_name(t, topic_prefix) for t in rights.reads),
            names(topic_prefix + g for g in rights.groups),
            names(topic_name(t, topic_prefix) for t in rights.creates),
        ]
        lines.append(f"| `{principal}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
