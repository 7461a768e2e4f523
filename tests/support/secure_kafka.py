"""A Kafka broker of a test's own with a SASL_SSL listener (SCRAM-SHA-256/512) and ACLs,
started by deploy/stack.sh in a directory and on ports of its own, so the shared broker is
never touched.

The CA and the broker's certificate are made here with openssl; the stack makes a SCRAM user
per principal of shared/kafka_rights.py, with its password in a file of the stack's, and grants
the principals' ACLs for the broker's topic prefix. Clients reach it through the settings the
services read (`kafka`, `client_env`); the plain listener, whose client is a super user, serves
what a test only observes (`superuser`)."""

import contextlib
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from shared.config import Settings
from shared.kafka_rights import ADMIN
from tests.support.processes import free_port
from tests.support.stack import ROOT, STACK_SCRIPT, kafka_libs_dir

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
    plain_port: int
    secure_port: int
    cafile: Path
    topic_prefix: str
    # Every command line seen on the machine while deploy/stack.sh started the broker.
    command_lines: frozenset[str] = field(default_factory=frozenset)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.secure_port}"

    @property
    def secrets(self) -> Path:
        return self.directory / "stack" / "kafka" / "secrets"

    def password_file(self, principal: str) -> Path:
        return self.secrets / f"{principal}.password"

    def client_env(self, principal: str = ADMIN, **overrides: str) -> dict[str, str]:
        """SANWU_KAFKA_* for a client of the SASL_SSL listener acting as `principal`."""
        return {
            "SANWU_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "SANWU_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "SANWU_KAFKA_SSL_CAFILE": str(self.cafile),
            "SANWU_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "SANWU_KAFKA_USERNAME": principal,
            "SANWU_KAFKA_PASSWORD_FILE": str(self.password_file(principal)),
            "SANWU_TOPIC_PREFIX": self.topic_prefix,
        } | overrides

    def kafka(self, principal: str, **overrides: str) -> dict[str, Any]:
        """The same as settings' keyword arguments (which win over the environment)."""
        env = self.client_env(principal, **overrides)
        return {name.removeprefix("SANWU_").lower(): value for name, value in env.items()}

    def settings(self, principal: str = ADMIN, **overrides: str) -> Settings:
        return Settings(environment="test", **self.kafka(principal, **overrides))

    def superuser(self) -> Settings:
        """A client of the plain listener, allowed everything (User:ANONYMOUS)."""
        return Settings(
            environment="test",
            kafka_bootstrap_servers=f"127.0.0.1:{self.plain_port}",
            kafka_security_protocol="PLAINTEXT",
            topic_prefix=self.topic_prefix,
        )


class CommandLines:
    """The command line of every process that runs on this machine while it watches, read
    from /proc every few milliseconds: a process that lives a fraction of a second is seen."""

    def __init__(self, every: float = 0.005) -> None:
        self.every = every
        self.seen: set[str] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> "CommandLines":
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.is_set():
            self.seen.update(running_command_lines())
            self._done.wait(self.every)


def running_command_lines() -> set[str]:
    lines = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            raw = Path(entry.path, "cmdline").read_bytes()
            if raw:
                lines.add(raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace"))
    return lines


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


def stack_env(
    directory: Path, *, ports: dict[str, int], cert: Path, key: Path, topic_prefix: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLUSTER_VARIABLES}
    env |= {
        "SANWU_STACK_DIR": str(directory / "stack"),
        "SANWU_KAFKA_PORT": str(ports["plain"]),
        "SANWU_KAFKA_CONTROLLER_PORT": str(ports["controller"]),
        "SANWU_KAFKA_SASL_SSL_PORT": str(ports["secure"]),
        "SANWU_KAFKA_TLS_CERT": str(cert),
        "SANWU_KAFKA_TLS_KEY": str(key),
        "SANWU_TOPIC_PREFIX": topic_prefix,
        "SANWU_KAFKA_HEAP": "256m",
    }
    libs = kafka_libs_dir()
    if libs is not None:  # the jars another stack resolved already
        env["SANWU_KAFKA_LIBS"] = str(libs)
    return env


@contextlib.contextmanager
def secure_kafka(directory: Path, *, watch: bool = False) -> Iterator[SecureBroker]:
    """A single broker with a SASL_SSL listener and ACLs for a topic prefix of its own, killed
    and forgotten afterwards. `watch`: record every command line seen while it starts."""
    make_ca(directory, "ca")
    cert, key = make_broker_certificate(directory, ca="ca")
    ports = {"plain": free_port(), "controller": free_port(), "secure": free_port()}
    prefix = f"secure-{uuid.uuid4().hex[:10]}."
    env = stack_env(directory, ports=ports, cert=cert, key=key, topic_prefix=prefix)
    try:
        with CommandLines() if watch else contextlib.nullcontext() as watched:
            subprocess.run([STACK_SCRIPT, "kafka-start"], env=env, cwd=ROOT, check=True)
        yield SecureBroker(
            directory,
            plain_port=ports["plain"],
            secure_port=ports["secure"],
            cafile=directory / "ca.pem",
            topic_prefix=prefix,
            command_lines=frozenset(watched.seen if watched else ()),
        )
    finally:
        subprocess.run([STACK_SCRIPT, "kafka-kill"], env=env, cwd=ROOT, check=False)
