"""Kafka settings: topics take their replication from them, and settings that cannot work are
refused at start with one line naming the setting."""

from pathlib import Path

import pytest

from shared import kafka
from shared.config import Settings, settings_or_exit


def settings(**values: object) -> Settings:
    return Settings(environment="test", **values)  # type: ignore[arg-type]


def test_topics_are_created_with_the_replication_the_settings_name() -> None:
    specs = kafka.topic_specs(settings(kafka_replication_factor=3, kafka_min_insync_replicas=2))

    assert {spec.replication_factor for spec in specs} == {3}
    assert {spec.topic_configs["min.insync.replicas"] for spec in specs} == {"2"}


def test_the_single_broker_default_is_one_replica(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANWU_KAFKA_REPLICATION_FACTOR", raising=False)
    monkeypatch.delenv("SANWU_KAFKA_MIN_INSYNC_REPLICAS", raising=False)
    specs = kafka.topic_specs(settings())

    assert {spec.replication_factor for spec in specs} == {1}
    assert {spec.topic_configs["min.insync.replicas"] for spec in specs} == {"1"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SANWU_KAFKA_REPLICATION_FACTOR": "1", "SANWU_KAFKA_MIN_INSYNC_REPLICAS": "2"},
            "SANWU_KAFKA_MIN_INSYNC_REPLICAS must not exceed SANWU_KAFKA_REPLICATION_FACTOR",
        ),
        (
            {"SANWU_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SANWU_KAFKA_USERNAME": "sanwu"},
            "SANWU_KAFKA_SECURITY_PROTOCOL SASL_SSL needs SANWU_KAFKA_USERNAME and "
            "SANWU_KAFKA_PASSWORD",
        ),
        (
            {"SANWU_KAFKA_PASSWORD_FILE": "/nonexistent/kafka-password"},
            "SANWU_KAFKA_PASSWORD_FILE: cannot read /nonexistent/kafka-password",
        ),
        ({"SANWU_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "SANWU_KAFKA_SSL_CAFILE: no file"),
        ({"SANWU_KAFKA_SASL_MECHANISM": "PLAIN"}, "SANWU_KAFKA_SASL_MECHANISM"),
    ],
)
def test_settings_that_cannot_work_stop_the_process_with_one_line(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANWU_ENVIRONMENT", "test")
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(SystemExit) as stopped:
        settings_or_exit(Settings)

    assert message in str(stopped.value)
    assert "\n" not in str(stopped.value)


def test_the_password_file_gives_its_first_line(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("s3cret\nsecond line\n")

    read = settings(kafka_password="ignored", kafka_password_file=tmp_path / "password")

    assert read.kafka_password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(read)


def test_clients_get_scram_only_when_asked() -> None:
    plain = kafka.client_options(settings(kafka_bootstrap_servers="127.0.0.1:29092"))
    secure = settings(
        kafka_bootstrap_servers="127.0.0.1:29092",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_username="sanwu",
        kafka_password="s3cret",
    )

    assert plain == {"bootstrap_servers": "127.0.0.1:29092", "security_protocol": "PLAINTEXT"}
    assert kafka.client_options(secure) == {
        "bootstrap_servers": "127.0.0.1:29092",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "sanwu",
        "sasl_plain_password": "s3cret",
    }
