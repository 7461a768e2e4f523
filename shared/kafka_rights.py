"""Who may do what on Kafka: a principal (a SCRAM user) per service, each writing only its own
topics and reading only the topics it consumes, in its own consumer groups; `sanwu-admin`
creates the topics (`sanwu topics ensure`), and no service may. The console uses no Kafka.

`RIGHTS` is the one table; `acls(topic_prefix)` renders it as the ACLs a cluster grants for
topics under that prefix (literal names only: a principal gains nothing from a topic or group
someone else names like its own). deploy/stack.sh grants them on the local TLS/SCRAM stack
(`python -m shared.kafka_rights grant`); the Strimzi KafkaUser resources state the same.

Why each right: a relay (`shared/outbox/relay.py`) writes its outbox's topic; a consumer
(`shared/consumer.py`) reads its topic in its group and writes what it cannot apply to the
dead-letter topic; a rebuild reads whole topics without a group (`shared/topic_reading.py`). An
idempotent producer needs WRITE on some topic, no cluster right. READ and WRITE imply
DESCRIBE; it is listed for whoever reads the table."""

import argparse
import asyncio
import hashlib
import os
import secrets
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.admin import (
    CreateAclsRequest_v1,
    CreateAclsResponse_v1,
    DescribeAclsRequest,
)
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from shared.config import Settings
from shared.retry import retry_until_done

INTAKE = "sanwu-intake"
EVALUATION = "sanwu-evaluation"
REPORTING = "sanwu-reporting"
APPLICATIONS = "sanwu-applications"
ADMIN = "sanwu-admin"

# Topics by their property on `Settings` (shared/config.py), which names them under the prefix.
EVENTS = "events_topic"
STATUSES = "status_topic"
INDICATORS = "indicator_topic"
WARNINGS = "warning_topic"
APPLICATION_STEPS = "application_topic"
DEAD_LETTERS = "dead_letter_topic"
TOPICS = (EVENTS, STATUSES, INDICATORS, WARNINGS, APPLICATION_STEPS, DEAD_LETTERS)

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
    INTAKE: Rights(writes=(EVENTS,)),
    EVALUATION: Rights(
        writes=(STATUSES, INDICATORS, WARNINGS, DEAD_LETTERS),
        reads=(EVENTS,),
        groups=("evaluation",),
    ),
    REPORTING: Rights(
        writes=(DEAD_LETTERS,),
        reads=(STATUSES, INDICATORS, WARNINGS),
        groups=("reporting", "reporting-indicators", "reporting-warnings"),
    ),
    APPLICATIONS: Rights(
        writes=(APPLICATION_STEPS, DEAD_LETTERS),
        reads=(STATUSES, INDICATORS),
        groups=("applications", "applications-indicators"),
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


# --- Granting: the Kafka admin protocol, so that no password is ever on a command line ------

RESOURCE_TYPES = {"ANY": 1, "TOPIC": 2, "GROUP": 3, "CLUSTER": 4}
PATTERN_TYPES = {"ANY": 1, "LITERAL": 3, "PREFIXED": 4}
OPERATIONS = {"ANY": 1, "READ": 3, "WRITE": 4, "CREATE": 5, "DESCRIBE": 8}
ALLOW = 3
ANY = 1
# Kafka's SCRAM mechanisms by protocol code, with the hash each salts passwords with.
MECHANISMS = {1: "sha256", 2: "sha512"}
ITERATIONS = 8192  # Kafka accepts 4096 to 16384


class AlterScramResponse(Response):
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "results",
            CompactArray(
                ("user", CompactString("utf-8")),
                ("error_code", Int16),
                ("error_message", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class AlterScramRequest(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = AlterScramResponse
    SCHEMA = Schema(
        (
            "deletions",
            CompactArray(
                ("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields)
            ),
        ),
        (
            "upsertions",
            CompactArray(
                ("name", CompactString("utf-8")),
                ("mechanism", Int8),
                ("iterations", Int32),
                ("salt", CompactBytes),
                ("salted_password", CompactBytes),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class AlterScram(Request[AlterScramRequest]):
    """AlterUserScramCredentials: each user's salted password for one mechanism (a request
    may name a user once). Only the salted form leaves this process, as SCRAM intends."""

    API_KEY = 51

    def __init__(self, passwords: dict[str, str], mechanism: int) -> None:
        self.upsertions = [upsertion(u, p, mechanism) for u, p in passwords.items()]

    def build(self, request_struct_class: type[AlterScramRequest]) -> AlterScramRequest:
        return request_struct_class([], self.upsertions, {})


class CreateAcls(Request[CreateAclsRequest_v1]):
    """CreateAcls with many entries at once (aiokafka's own takes one)."""

    API_KEY = 30

    def __init__(self, entries: Iterable[Acl]) -> None:
        self.creations = [
            (
                RESOURCE_TYPES[acl.resource_type],
                acl.name,
                PATTERN_TYPES[acl.pattern_type],
                f"User:{acl.principal}",
                "*",
                OPERATIONS[operation],
                ALLOW,
            )
            for acl in entries
            for operation in acl.operations
        ]

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(self.creations)


def upsertion(user: str, password: str, mechanism: int) -> tuple[Any, ...]:
    """A user's credential for a mechanism: a fresh salt and SCRAM's SaltedPassword,
    Hi(password, salt, i), which is PBKDF2 with the mechanism's HMAC."""
    salt = secrets.token_bytes(32)
    salted = hashlib.pbkdf2_hmac(MECHANISMS[mechanism], password.encode(), salt, ITERATIONS)
    return (user, mechanism, ITERATIONS, salt, salted, {})


def password_of(principal: str, directory: Path) -> str:
    """The principal's password from `<directory>/<principal>.password`, made (random, readable
    by this user only) when there is none yet."""
    path = directory / f"{principal}.password"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().splitlines()[0]
    password = secrets.token_urlsafe(32)
    with os.fdopen(descriptor, "w") as file:
        file.write(password + "\n")
    return password


def granted(entries: Iterable[Acl]) -> set[tuple[int, str, int, str, int]]:
    """The ACL entries as the broker describes them."""
    return {
        (
            RESOURCE_TYPES[acl.resource_type],
            acl.name,
            PATTERN_TYPES[acl.pattern_type],
            f"User:{acl.principal}",
            OPERATIONS[operation],
        )
        for acl in entries
        for operation in acl.operations
    }


async def described(client: AIOKafkaClient, node_id: int) -> set[tuple[int, str, int, str, int]]:
    """Every ALLOW entry the broker `node_id` holds now."""
    request = DescribeAclsRequest(ANY, None, ANY, None, None, ANY, ALLOW)
    response = await client.send(node_id, request)
    refuse_if_failed(response.error_code, response.error_message)
    return {
        (resource_type, name, pattern_type, principal, operation)
        for resource_type, name, pattern_type, entries in response.resources
        for principal, _host, operation, _permission in entries
    }


def refuse_if_failed(error_code: int, message: str | None) -> None:
    if error_code:
        raise for_code(error_code)(message)


class NotYetApplied(Exception):
    pass


def is_retriable(error: BaseException) -> bool:
    return isinstance(error, KafkaError) and bool(error.retriable)


async def grant(
    bootstrap_servers: str, *, topic_prefix: str, secrets_dir: Path, timeout: float = 60.0
) -> None:
    """Create or update every principal's SCRAM user (both mechanisms; passwords from
    `secrets_dir`, made there when missing) and grant the ACLs of `acls(topic_prefix)`; return
    once every broker applies them, trying again for up to `timeout` seconds (a broker that has
    just started may not serve yet). `bootstrap_servers`: a listener whose client may do this
    (the local stack's plain one)."""
    passwords = {principal: password_of(principal, secrets_dir) for principal in PRINCIPALS}
    entries = acls(topic_prefix)
    await retry_until_done(
        lambda: grant_once(bootstrap_servers, passwords=passwords, entries=entries),
        event="kafka_rights_not_granted",
        retry_if=lambda error: isinstance(error, NotYetApplied) or is_retriable(error),
        first_pause=0.1,
        within=timeout,
    )


async def grant_once(
    bootstrap_servers: str, *, passwords: dict[str, str], entries: list[Acl]
) -> None:
    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15_000)
    await client.bootstrap()
    try:
        brokers = sorted(broker.nodeId for broker in client.cluster.brokers())
        for mechanism in MECHANISMS:
            altered: Any = await client.send(brokers[0], AlterScram(passwords, mechanism))
            for user, code, message, _ in altered.results:
                refuse_if_failed(code, f"SCRAM user {user}: {message}")
        created: CreateAclsResponse_v1 = await client.send(brokers[0], CreateAcls(entries))
        for code, message in created.creation_responses:
            refuse_if_failed(code, message)
        # Credentials were written before the ACLs: a broker that holds the ACLs holds both.
        for node_id in brokers:
            if not granted(entries) <= await described(client, node_id):
                raise NotYetApplied(f"broker {node_id} does not hold every ACL yet")
    finally:
        await client.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.kafka_rights", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    table = commands.add_parser("table", help="print the ACLs as a Markdown table")
    table.add_argument("--topic-prefix", default="sanwu.")
    granting = commands.add_parser("grant", help="create the SCRAM users and grant the ACLs")
    granting.add_argument("--bootstrap-servers", required=True)
    granting.add_argument("--topic-prefix", required=True)
    granting.add_argument("--secrets", type=Path, required=True, help="the password files")
    args = parser.parse_args(argv)
    if args.command == "table":
        print(markdown(args.topic_prefix))
        return
    try:
        asyncio.run(
            grant(args.bootstrap_servers, topic_prefix=args.topic_prefix, secrets_dir=args.secrets)
        )
    except Exception as exc:  # one line for deploy/stack.sh to show
        sys.exit(f"kafka_rights: could not grant the principals' rights: {exc!r}")


if __name__ == "__main__":
    main()
