"""Settings shared by every service: one pydantic-settings base, read from SANWU_* variables.

Defaults match the local stack started by `make up`. Secrets have a usable default only when
`SANWU_ENVIRONMENT` says `local` or `test`; unset, the environment is `production`, and a
secret left at its default stops the process at start with one line naming it.
"""

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

DEFAULT_CAMPAIGN_FILE = Path(__file__).resolve().parents[1] / "campaign" / "zongyang-2018.yaml"
LOCAL_ONLY_SECRET = "local-only-petitioner-hash-secret"
# Outside local and test runs: the hashes of people's references are only as safe as this key.
MIN_SECRET_BYTES = 32
# The database role that owns the schemas and runs migrations (docs/operations.md, SECURITY.md).
MIGRATOR_ROLE = "sanwu"

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class LogSettings(BaseSettings):
    """Only how to log: what a command line needs before it knows which settings its command
    takes (an import of events needs no hash secret)."""

    model_config = SettingsConfigDict(env_prefix="SANWU_", extra="ignore")

    log_level: str = "INFO"


class ClockSettings(BaseSettings):
    """Only the clock: what every service takes for now (`shared.campaign.system_now`).
    Test and local runs may move it by SANWU_CLOCK_OFFSET_SECONDS, to see a date or hour
    without waiting for it; production refuses an offset."""

    model_config = SettingsConfigDict(env_prefix="SANWU_", extra="ignore")

    environment: Literal["local", "test", "production"] = "production"
    clock_offset_seconds: float = 0.0

    @model_validator(mode="after")
    def _no_offset_in_production(self) -> "ClockSettings":
        refuse_clock_offset(self.environment, self.clock_offset_seconds)
        return self


def refuse_clock_offset(environment: str, offset_seconds: float) -> None:
    if environment == "production" and offset_seconds:
        raise ValueError("clock offsets are for tests and local runs, not production")


@lru_cache
def clock_offset() -> timedelta:
    """How far every service's clock runs from the system's (read once per process)."""
    return timedelta(seconds=settings_or_exit(ClockSettings).clock_offset_seconds)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SANWU_", extra="ignore")

    # Only an explicit local or test environment may run with the local-only secret.
    environment: Literal["local", "test", "production"] = "production"
    # Where the database is. The user it names, if any, logs in; otherwise `database_user`, which
    # each service sets to its own role (the migrator here, for the command line). A password
    # not in the URL comes from PGPASSFILE (the local stack's `.stack/pgpass`).
    database_url: str = "postgresql+asyncpg://127.0.0.1:25432/sanwu"
    database_user: str = MIGRATOR_ROLE
    database_pool_size: int = 10
    # How long a request waits for a free pooled connection before a 503.
    database_pool_timeout_seconds: float = 5.0
    kafka_bootstrap_servers: str = "127.0.0.1:29092"
    # Topics are created with these (production: 3 and 2; the local single broker: 1 and 1).
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_min_insync_replicas: int = Field(default=1, ge=1)
    # TLS and SASL/SCRAM towards the brokers. The CA file is the trust anchor for SSL and
    # SASL_SSL (unset: the system's); the password comes from SANWU_KAFKA_PASSWORD or, when
    # SANWU_KAFKA_PASSWORD_FILE names a file (a mounted secret), from its first line.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_cafile: Path | None = None
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_username: str = ""
    kafka_password: SecretStr = SecretStr("")
    kafka_password_file: Path | None = None
    topic_prefix: str = "sanwu."
    event_partitions: int = 6
    status_partitions: int = 6
    petitioner_hash_secret: str = LOCAL_ONLY_SECRET
    registry_refresh_seconds: float = 2.0
    log_level: str = "INFO"
    log_json: bool = True
    campaign_file: Path = DEFAULT_CAMPAIGN_FILE
    # Per key, in the `limits` notation ("2000/second", "100000/minute"); empty turns it off.
    rate_limit: str = "2000/second"
    # Per client address: failed authentications allowed per window before keys that are not
    # already known in memory are refused with 429 until the window ends ("" turns it off).
    auth_failure_limit: str = "60/minute"
    # The whole request body must have arrived within this time of the request's start.
    request_body_timeout_seconds: float = 30.0
    # Read by `clock_offset`; here too so that a production service refuses it at start.
    clock_offset_seconds: float = 0.0

    @property
    def events_topic(self) -> str:
        return f"{self.topic_prefix}petition-events"

    @property
    def status_topic(self) -> str:
        return f"{self.topic_prefix}unit-status"

    @property
    def indicator_topic(self) -> str:
        return f"{self.topic_prefix}unit-indicators"

    @property
    def warning_topic(self) -> str:
        return f"{self.topic_prefix}early-warnings"

    @property
    def application_topic(self) -> str:
        return f"{self.topic_prefix}applications"

    @property
    def disputes_topic(self) -> str:
        return f"{self.topic_prefix}disputes"

    @property
    def cases_topic(self) -> str:
        return f"{self.topic_prefix}cases"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic_prefix}dead-letter"

    @model_validator(mode="after")
    def _log_in_as_database_user(self) -> "Settings":
        self.database_url = with_user(self.database_url, self.database_user)
        return self

    @model_validator(mode="after")
    def _check_kafka(self) -> "Settings":
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError(
                "SANWU_KAFKA_MIN_INSYNC_REPLICAS must not exceed SANWU_KAFKA_REPLICATION_FACTOR"
            )
        if self.kafka_password_file is not None:
            self.kafka_password = SecretStr(_first_line(self.kafka_password_file))
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_username and self.kafka_password.get_secret_value()
        ):
            raise ValueError(
                f"SANWU_KAFKA_SECURITY_PROTOCOL {self.kafka_security_protocol} needs "
                "SANWU_KAFKA_USERNAME and SANWU_KAFKA_PASSWORD (or SANWU_KAFKA_PASSWORD_FILE)"
            )
        if self.kafka_ssl_cafile is not None and not self.kafka_ssl_cafile.is_file():
            raise ValueError(f"SANWU_KAFKA_SSL_CAFILE: no file {self.kafka_ssl_cafile}")
        return self

    @model_validator(mode="after")
    def _no_clock_offset_in_production(self) -> "Settings":
        refuse_clock_offset(self.environment, self.clock_offset_seconds)
        return self

    @model_validator(mode="after")
    def _refuse_default_secret_outside_local(self) -> "Settings":
        if self.environment in ("local", "test"):
            return self
        if self.petitioner_hash_secret == LOCAL_ONLY_SECRET:
            raise ValueError(
                "SANWU_PETITIONER_HASH_SECRET must be set "
                f"(SANWU_ENVIRONMENT is {self.environment}; only local or test runs may use "
                "the built-in secret)"
            )
        length = len(self.petitioner_hash_secret.encode())
        if length < MIN_SECRET_BYTES:
            raise ValueError(
                f"SANWU_PETITIONER_HASH_SECRET must be at least {MIN_SECRET_BYTES} bytes; it "
                f"has {length} (make one with `openssl rand -hex 32`)"
            )
        return self


def as_migrator(settings: SettingsT) -> SettingsT:
    """The same settings logging in as the migrator, for work that changes tables (a rebuild
    swaps new ones in), unless the URL names its own user (then that one is meant)."""
    if not isinstance(settings, Settings) or settings.database_user == MIGRATOR_ROLE:
        return settings
    url = make_url(settings.database_url)
    if url.username != settings.database_user:
        return settings
    migrator = url.set(username=MIGRATOR_ROLE).render_as_string(False)
    return settings.model_copy(update={"database_url": migrator, "database_user": MIGRATOR_ROLE})


def with_user(database_url: str, user: str) -> str:
    """The URL, naming `user` unless it names a user already."""
    url = make_url(database_url)
    return database_url if url.username else url.set(username=user).render_as_string(False)


def _first_line(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(
            f"SANWU_KAFKA_PASSWORD_FILE: cannot read {path} ({exc.strerror})"
        ) from None
    return text.splitlines()[0] if text else ""


def settings_or_exit(kind: type[SettingsT]) -> SettingsT:
    """A process's settings from its environment; invalid ones stop it with one line."""
    try:
        return kind()
    except ValidationError as exc:
        raise SystemExit(f"sanwu: invalid settings: {one_line(exc)}") from None


def one_line(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"SANWU_{field.upper()}: {message}" if field else message)
    return "; ".join(problems)


@lru_cache
def get_settings() -> Settings:
    return settings_or_exit(Settings)
