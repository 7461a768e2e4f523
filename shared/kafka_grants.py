"""Granting `shared.kafka_rights` on a cluster through the Kafka admin protocol, so that no
password is ever on a command line: a SCRAM user per principal (its password made once into a
file of mode 600, only the salted form sent to the brokers) and its ACLs. deploy/stack.sh runs
it over the local stack's plain loopback listener (`python -m shared.kafka_grants grant`)."""

import argparse
import asyncio
import hashlib
import os
import secrets
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

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

from shared.kafka_rights import PRINCIPALS, Acl, acls, markdown
from shared.retry import retry_until_done

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
    parser = argparse.ArgumentParser(prog="python -m shared.kafka_grants", description=__doc__)
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
        sys.exit(f"kafka_grants: could not grant the principals' rights: {exc!r}")


if __name__ == "__main__":
    main()
