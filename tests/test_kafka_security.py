"""Kafka over TLS with SASL/SCRAM. A broker of the test's own (tests/support/secure_kafka.py)
carries intake, evaluation, reporting and applications through its SASL_SSL listener, each
service as its own principal with only the rights shared/kafka_rights.py grants it; no password
of the principals is ever on a command line; a client with a wrong password or without the
broker's CA is stopped at start with one line saying why, at once rather than after the minute
a broker that is away is waited for."""

import asyncio
import json
import os
import stat
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.applications.config import ApplicationsSettings
from services.applications.main import create_app as create_applications_app
from services.evaluation.config import EvaluationSettings
from services.evaluation.main import create_app as create_evaluation_app
from services.intake.config import IntakeSettings
from services.intake.main import create_app as create_intake_app
from services.reporting.config import ReportingSettings
from services.reporting.main import create_app as create_reporting_app
from shared import kafka
from shared.access.models import Role
from shared.config import DEFAULT_CAMPAIGN_FILE, Settings
from shared.errors import BrokerRefused
from shared.kafka_rights import ADMIN, APPLICATIONS, EVALUATION, INTAKE, PRINCIPALS, REPORTING
from tests.conftest import COUNTY, DEMO_UNITS, VILLAGE
from tests.support import events
from tests.support.app import bearer, serve
from tests.support.pipeline import KeySpecs, prepare
from tests.support.processes import free_port, sanwu, uvicorn
from tests.support.secure_kafka import SecureBroker, make_ca, secure_kafka
from tests.support.stack import IsolatedStack, create_database, drop_database, new_stack
from tests.support.waiting import wait_until

KEYS: KeySpecs = {"desk": (Role.desk, COUNTY), "reader": (Role.reader, COUNTY)}
# A broker that is away is waited for up to a minute at start; a refusal must come well before.
PROMPTLY = 15.0
# What the services consume, and in which group (the names after the topic prefix).
CONSUMED = (
    ("petition-events", "evaluation"),
    ("unit-status", "reporting"),
    ("unit-indicators", "reporting-indicators"),
    ("unit-status", "applications"),
    ("unit-indicators", "applications-indicators"),
)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    with secure_kafka(tmp_path_factory.mktemp("secure-kafka"), watch=True) as started:
        yield started


@dataclass
class Services:
    intake: httpx.AsyncClient
    reporting: httpx.AsyncClient
    keys: dict[str, str]


@pytest.fixture
async def services(broker: SecureBroker, stack: IsolatedStack) -> AsyncIterator[Services]:
    """The four services in-process on a database of their own, each reaching the broker as
    its own principal; the admin principal made the topics."""
    isolated = new_stack()
    common: dict[str, Any] = {
        "environment": "test",
        "database_url": isolated.database_url,
        "campaign_file": DEFAULT_CAMPAIGN_FILE,
        "registry_refresh_seconds": 0.3,
    }
    await create_database(isolated.database)
    try:
        keys = await prepare(
            Settings(**common, **broker.kafka(ADMIN)), registry=[DEMO_UNITS], keys=KEYS
        )
        intake = IntakeSettings(**common, **broker.kafka(INTAKE), relay_idle_poll_seconds=0.2)
        evaluation = EvaluationSettings(
            **common,
            **broker.kafka(EVALUATION),
            evaluation_poll_ms=50,
            status_relay_idle_poll_seconds=0.2,
        )
        reporting = ReportingSettings(**common, **broker.kafka(REPORTING))
        applications = ApplicationsSettings(
            **common, **broker.kafka(APPLICATIONS), applications_relay_idle_poll_seconds=0.2
        )
        async with AsyncExitStack() as running:
            intake_client = await running.enter_async_context(
                serve(create_intake_app(intake), "http://intake")
            )
            await running.enter_async_context(
                serve(create_evaluation_app(evaluation), "http://evaluation")
            )
            reporting_client = await running.enter_async_context(
                serve(create_reporting_app(reporting), "http://reporting")
            )
            await running.enter_async_context(
                serve(create_applications_app(applications), "http://applications")
            )
            yield Services(intake_client, reporting_client, keys)
    finally:
        await drop_database(isolated.database)


async def caught_up(broker: SecureBroker) -> bool:
    """Whether every topic the services consume has messages, and every group has consumed
    them all."""
    settings = broker.superuser()
    ends = {
        topic: await kafka.end_offsets(settings, broker.topic_prefix + topic)
        for topic in {topic for topic, _ in CONSUMED}
    }
    if not all(sum(offsets.values()) for offsets in ends.values()):
        return False
    admin = kafka.admin(settings)
    await admin.start()
    try:
        for topic, group in CONSUMED:
            committed = await kafka.committed_offsets(admin, broker.topic_prefix + group)
            if committed is None or any(
                committed.get(tp, 0) < end for tp, end in ends[topic].items()
            ):
                return False
    finally:
        await admin.close()
    return True


async def test_events_travel_the_pipeline_each_service_as_its_own_principal(
    services: Services, broker: SecureBroker
) -> None:
    visit = events.visit(
        VILLAGE, destination="city", headcount=8, occurred_at="2018-06-03T09:30:00+08:00"
    )
    meeting = events.meeting(VILLAGE, occurred_at="2018-06-04T09:30:00+08:00")  # indicators
    for event in (visit, meeting):
        response = await services.intake.post(
            "/v1/events", json=event, headers=bearer(services.keys["desk"])
        )
        assert response.status_code == 202, response.text

    async def reported() -> bool:
        """Whether reporting's status of the village counts the visit."""
        answer = await services.reporting.get(
            f"/v1/units/{VILLAGE}/status",
            params={"period": "2018"},
            headers=bearer(services.keys["reader"]),
        )
        return answer.status_code == 200 and answer.json()["three_no"] is False

    await wait_until(reported, timeout=30, message="reporting to count the visit")
    await wait_until(
        lambda: caught_up(broker), timeout=30, message="every service to consume what it reads"
    )


def test_no_password_is_on_a_command_line_while_the_stack_starts(broker: SecureBroker) -> None:
    passwords = [broker.password_file(p).read_text().strip() for p in PRINCIPALS]
    seen = broker.command_lines

    # The watch saw the stack's own short-lived processes: the storage format and the grant.
    assert any("kafka.tools.StorageTool format" in line for line in seen)
    assert any("shared.kafka_grants grant" in line for line in seen)
    assert len(set(passwords)) == len(PRINCIPALS)
    assert [line for line in seen if any(password in line for password in passwords)] == []


def test_the_passwords_are_readable_by_their_owner_only(broker: SecureBroker) -> None:
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in broker.secrets.iterdir()}

    assert stat.S_IMODE(broker.secrets.stat().st_mode) == 0o700
    assert modes == {f"{principal}.password": 0o600 for principal in PRINCIPALS}


async def test_a_wrong_password_is_refused_at_once(broker: SecureBroker, tmp_path: Path) -> None:
    (tmp_path / "wrong").write_text("not-the-password\n")
    settings = broker.settings(ADMIN, SANWU_KAFKA_PASSWORD_FILE=str(tmp_path / "wrong"))
    started = time.monotonic()

    with pytest.raises(BrokerRefused, match="wrong user name or password") as refused:
        await kafka.ensure_topics(settings)

    assert time.monotonic() - started < PROMPTLY
    assert f"Kafka at {broker.bootstrap} refused this client" in str(refused.value)


async def test_a_broker_certificate_from_another_ca_is_refused(
    broker: SecureBroker, tmp_path: Path
) -> None:
    other_ca = make_ca(tmp_path, "other-ca")
    settings = broker.settings(ADMIN, SANWU_KAFKA_SSL_CAFILE=str(other_ca))

    with pytest.raises(BrokerRefused, match="TLS certificate was not accepted"):
        await kafka.ensure_topics(settings)


async def test_the_right_password_is_accepted(broker: SecureBroker) -> None:
    settings = broker.settings(ADMIN)
    await kafka.ensure_topics(settings)

    for topic in kafka.topic_specs(settings):
        assert await kafka.partitions_of(settings, topic.name), topic.name


def wrong_password(broker: SecureBroker, principal: str) -> dict[str, str]:
    """The broker's client settings with a wrong password given directly (no file)."""
    env = broker.client_env(principal, SANWU_KAFKA_PASSWORD="wrong")
    del env["SANWU_KAFKA_PASSWORD_FILE"]
    return env


async def run(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run a process to its end (a minute at most); its exit code and its output."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=os.environ | env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"{argv[0]} did not stop with a wrong password") from None
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_a_command_with_a_wrong_password_ends_with_a_line_saying_so(
    broker: SecureBroker, stack: IsolatedStack
) -> None:
    code, output = await run(
        sanwu("topics", "ensure"),
        wrong_password(broker, ADMIN),
    )

    assert code == 1
    # aiokafka logs the failed connection itself; the command's own line comes last.
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1] == (
        f"sanwu: Kafka at {broker.bootstrap} refused this client: user 'sanwu-admin' was not "
        "authenticated by SCRAM-SHA-512: wrong user name or password (SANWU_KAFKA_USERNAME, "
        "SANWU_KAFKA_PASSWORD[_FILE])"
    )


async def test_a_service_with_a_wrong_password_does_not_start(
    broker: SecureBroker, settings: Settings
) -> None:
    """Intake with its relay: the refusal is logged as one event and the process exits."""
    code, output = await run(
        uvicorn("services.intake.main:create_app", free_port()),
        wrong_password(broker, INTAKE),
    )

    assert code != 0
    logged = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    refused = [entry for entry in logged if entry["event"] == "kafka_refused"]
    assert len(refused) == 1, output
    assert "wrong user name or password" in refused[0]["detail"]
