"""Kafka over TLS with SASL/SCRAM. A broker of the test's own (tests/support/secure_kafka.py)
carries intake, evaluation and reporting through its SASL_SSL listener; a client with a wrong
password or without the broker's CA is stopped at start with one line saying why, at once
rather than after the minute a broker that is away is waited for."""

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared import kafka
from shared.access.models import Role
from shared.config import DEFAULT_CAMPAIGN_FILE, Settings
from shared.errors import BrokerRefused
from tests.conftest import COUNTY, DEMO_UNITS, VILLAGE
from tests.support import events
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.processes import free_port, sanwu, uvicorn
from tests.support.secure_kafka import SecureBroker, make_ca, secure_kafka
from tests.support.stack import IsolatedStack, read_topic

KEYS = {"desk": (Role.desk, COUNTY), "reader": (Role.reader, COUNTY)}
# A broker that is away is waited for up to a minute at start; a refusal must come well before.
PROMPTLY = 15.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    with secure_kafka(tmp_path_factory.mktemp("secure-kafka")) as started:
        yield started


@pytest.fixture
async def secure_pipeline(
    broker: SecureBroker, stack: IsolatedStack, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Pipeline]:
    for name, value in broker.client_env().items():
        monkeypatch.setenv(name, value)
    async with running_pipeline(
        campaign_file=DEFAULT_CAMPAIGN_FILE, registry=[DEMO_UNITS], keys=KEYS
    ) as running:
        yield running


def client_settings(broker: SecureBroker, **overrides: str) -> Settings:
    env = broker.client_env(**overrides)
    return Settings(**{name.removeprefix("SANWU_").lower(): value for name, value in env.items()})


async def test_events_travel_the_pipeline_over_tls_and_scram(secure_pipeline: Pipeline) -> None:
    settings = secure_pipeline.settings
    assert settings.kafka_security_protocol == "SASL_SSL"
    visit = events.visit(
        VILLAGE, destination="city", headcount=8, occurred_at="2018-06-03T09:30:00+08:00"
    )

    await secure_pipeline.post(secure_pipeline.keys["desk"], visit)
    await secure_pipeline.drained()

    on_topic = await read_topic(settings, settings.events_topic)
    assert [json.loads(value)["event"]["event_id"] for *_, value, _ in on_topic] == [
        visit["event_id"]
    ]
    response = await secure_pipeline.reporting.get(
        f"/v1/units/{VILLAGE}/status", secure_pipeline.keys["reader"], period="2018"
    )
    assert response.status_code == 200, response.text
    assert response.json()["three_no"] is False


async def test_a_wrong_password_is_refused_at_once(broker: SecureBroker, tmp_path: Path) -> None:
    (tmp_path / "wrong").write_text("not-the-password\n")
    settings = client_settings(broker, SANWU_KAFKA_PASSWORD_FILE=str(tmp_path / "wrong"))
    started = time.monotonic()

    with pytest.raises(BrokerRefused, match="wrong user name or password") as refused:
        await kafka.ensure_topics(settings)

    assert time.monotonic() - started < PROMPTLY
    assert f"Kafka at {broker.bootstrap} refused this client" in str(refused.value)


async def test_a_broker_certificate_from_another_ca_is_refused(
    broker: SecureBroker, tmp_path: Path
) -> None:
    other_ca = make_ca(tmp_path, "other-ca")
    settings = client_settings(broker, SANWU_KAFKA_SSL_CAFILE=str(other_ca))

    with pytest.raises(BrokerRefused, match="TLS certificate was not accepted"):
        await kafka.ensure_topics(settings)


async def test_the_right_password_creates_the_topics(broker: SecureBroker) -> None:
    settings = client_settings(broker, SANWU_TOPIC_PREFIX=f"secure-{free_port()}.")
    assert await kafka.ensure_topics(settings) == [t.name for t in kafka.topic_specs(settings)]
    await kafka.delete_topics(settings, [t.name for t in kafka.topic_specs(settings)])


def wrong_password(broker: SecureBroker) -> dict[str, str]:
    """The broker's client settings with a wrong password given directly (no file)."""
    env = broker.client_env(SANWU_KAFKA_PASSWORD="wrong")
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
        wrong_password(broker),
    )

    assert code == 1
    # aiokafka logs the failed connection itself; the command's own line comes last.
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1] == (
        f"sanwu: Kafka at {broker.bootstrap} refused this client: user 'sanwu-test' was not "
        "authenticated by SCRAM-SHA-512: wrong user name or password (SANWU_KAFKA_USERNAME, "
        "SANWU_KAFKA_PASSWORD[_FILE])"
    )


async def test_a_service_with_a_wrong_password_does_not_start(
    broker: SecureBroker, stack: IsolatedStack
) -> None:
    """Intake with its relay: the refusal is logged as one event and the process exits."""
    code, output = await run(
        uvicorn("services.intake.main:create_app", free_port()),
        wrong_password(broker),
    )

    assert code != 0
    logged = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    refused = [entry for entry in logged if entry["event"] == "kafka_refused"]
    assert len(refused) == 1, output
    assert "wrong user name or password" in refused[0]["detail"]
