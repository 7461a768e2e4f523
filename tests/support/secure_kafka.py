"""A Kafka broker of a test's own with a SASL_SSL listener (SCRAM-SHA-256/512), started by
deploy/stack.sh in a directory and on ports of its own, so the shared broker is never touched.

The CA and the broker's certificate are made here with openssl; the SCRAM user is created when
the broker's storage is formatted. Clients reach it through the same settings the services
read (`client_env`)."""

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import free_port
from tests.support.stack import ROOT, STACK_SCRIPT, kafka_libs_dir

USERNAME = "sanwu-test"
PASSWORD = "correct-horse-battery-staple"
# What a cluster run exports that a single broker of the test's own must not inherit.
CLUSTER_VARIABLES = (
    "KAFKA_BROKERS",
    "SANWU_KAFKA_BROKERS",
    "KAFKA_CONTROLLERS",
    "SANWU_KAFKA_CONTROLLERS",
)


@dataclass(frozen=True)
class SecureBroker:
    directory: Path
    secure_port: int
    cafile: Path
    password_file: Path

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.secure_port}"

    def client_env(self, **overrides: str) -> dict[str, str]:
        """SANWU_KAFKA_* for a client of this broker's SASL_SSL listener."""
        return {
            "SANWU_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "SANWU_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "SANWU_KAFKA_SSL_CAFILE": str(self.cafile),
            "SANWU_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "SANWU_KAFKA_USERNAME": USERNAME,
            "SANWU_KAFKA_PASSWORD_FILE": str(self.password_file),
        } | overrides


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> Path:
    """A self-signed CA (`name`.pem, `name`.key); returns the certificate's path."""
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN=sanwu {name}", "-keyout", f"{name}.key", "-out", f"{name}.pem",
        cwd=directory,
    )  # fmt: skip
    return directory / f"{name}.pem"


def make_broker_certificate(directory: Path, *, ca: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost signed by the CA `ca`, and its PKCS#8 key."""
    (directory / "broker.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "broker.key", "-out", "broker.csr",
        cwd=directory,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", "broker.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "2", "-extfile", "broker.ext", "-out", "broker.pem",
        cwd=directory,
    )  # fmt: skip
    return directory / "broker.pem", directory / "broker.key"


def stack_env(directory: Path, *, ports: dict[str, int], cert: Path, key: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLUSTER_VARIABLES}
    env.pop("SANWU_KAFKA_PASSWORD", None)
    env |= {
        "SANWU_STACK_DIR": str(directory / "stack"),
        "SANWU_KAFKA_PORT": str(ports["plain"]),
        "SANWU_KAFKA_CONTROLLER_PORT": str(ports["controller"]),
        "SANWU_KAFKA_SASL_SSL_PORT": str(ports["secure"]),
        "SANWU_KAFKA_TLS_CERT": str(cert),
        "SANWU_KAFKA_TLS_KEY": str(key),
        "SANWU_KAFKA_USERNAME": USERNAME,
        "SANWU_KAFKA_PASSWORD_FILE": str(directory / "password"),
        "SANWU_KAFKA_HEAP": "256m",
    }
    libs = kafka_libs_dir()
    if libs is not None:  # the jars another stack resolved already
        env["SANWU_KAFKA_LIBS"] = str(libs)
    return env


@contextlib.contextmanager
def secure_kafka(directory: Path) -> Iterator[SecureBroker]:
    """A single broker with a SASL_SSL listener, killed and forgotten afterwards."""
    make_ca(directory, "ca")
    cert, key = make_broker_certificate(directory, ca="ca")
    (directory / "password").write_text(PASSWORD + "\n")
    ports = {"plain": free_port(), "controller": free_port(), "secure": free_port()}
    env = stack_env(directory, ports=ports, cert=cert, key=key)
    subprocess.run([STACK_SCRIPT, "kafka-start"], env=env, cwd=ROOT, check=True)
    try:
        yield SecureBroker(directory, ports["secure"], directory / "ca.pem", directory / "password")
    finally:
        subprocess.run([STACK_SCRIPT, "kafka-kill"], env=env, cwd=ROOT, check=False)
