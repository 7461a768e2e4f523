import base64
import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from services.audit.checkpoints import Signer
from shared.config import Settings, settings_or_exit

# Known to everyone, so only local and test runs may sign with it (like the local-only
# petitioner secret of shared.config).
LOCAL_ONLY_SIGNING_KEY = base64.b64encode(
    hashlib.sha256(b"sanwu local-only audit signing key").digest()
).decode()


class AuditSettings(Settings):
    # The service logs in as its own role when SANWU_DATABASE_URL names no user.
    database_user: str = "sanwu_audit"
    audit_host: str = "127.0.0.1"
    audit_port: int = 8006
    audit_run_consumer: bool = True
    audit_consumer_group: str | None = None
    # A batch is appended in one transaction under the log's lock: larger batches pay the
    # round trips and the commit once for more leaves. A fetch brings up to
    # `audit_fetch_bytes` of a partition, so a poll finds a batch's worth waiting.
    audit_batch_size: int = Field(5000, ge=1, le=20_000)
    audit_fetch_bytes: int = Field(8 * 1024 * 1024, ge=1024 * 1024)
    # Members of the petition events' consumer group in the process. A county's events share
    # a partition, so a second member helps where several counties post: while one appends
    # (the database at work), the other decodes its batch (the process at work).
    audit_event_readers: int = Field(2, ge=1, le=6)
    # Fault injection for the crash tests: a consumer exits abruptly at that point of the
    # first batch that appends something.
    audit_crash_at: Literal["before_commit", "after_commit"] | None = None
    # The log's name in every checkpoint it signs: a deployment sets its own.
    audit_origin: str = Field("sanwu.local/audit", pattern=r"^[^\s]{1,200}$")
    # The Ed25519 key checkpoints are signed with: a PEM PKCS#8 private key
    # (`openssl genpkey -algorithm ed25519`) or the base64 of its 32-byte seed, given as is or
    # in a file (a mounted secret), which wins.
    audit_signing_key: SecretStr = SecretStr(LOCAL_ONLY_SIGNING_KEY)
    audit_signing_key_file: Path | None = None
    # A checkpoint is signed when the log has grown, at most once per this interval.
    audit_checkpoint_interval_seconds: float = Field(1.0, gt=0)
    # Key operations wait in their outbox; the trigger that fills it wakes the service, and
    # this bounds the wait when a notification is missed.
    audit_key_operations_poll_seconds: float = Field(1.0, gt=0)

    @property
    def consumer_group(self) -> str:
        """Groups are broker-wide: by default namespaced like the topics."""
        return self.audit_consumer_group or f"{self.topic_prefix}audit"

    def signer(self) -> Signer:
        return Signer.from_text(self.audit_signing_key.get_secret_value(), origin=self.audit_origin)

    @model_validator(mode="after")
    def _no_faults_in_production(self) -> "AuditSettings":
        if self.environment == "production" and self.audit_crash_at:
            raise ValueError("crash points are for tests, not production")
        return self

    @model_validator(mode="after")
    def _signing_key(self) -> "AuditSettings":
        if self.audit_signing_key_file is not None:
            try:
                text = self.audit_signing_key_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(
                    f"SANWU_AUDIT_SIGNING_KEY_FILE: cannot read {self.audit_signing_key_file} "
                    f"({exc.strerror})"
                ) from None
            self.audit_signing_key = SecretStr(text)
        if (
            self.environment not in ("local", "test")
            and self.audit_signing_key.get_secret_value() == LOCAL_ONLY_SIGNING_KEY
        ):
            raise ValueError(
                "SANWU_AUDIT_SIGNING_KEY (or SANWU_AUDIT_SIGNING_KEY_FILE) must be set "
                f"(SANWU_ENVIRONMENT is {self.environment}; only local or test runs may sign "
                "with the built-in key)"
            )
        try:
            self.signer()
        except ValueError as exc:
            raise ValueError(f"SANWU_AUDIT_SIGNING_KEY: {exc}") from None
        return self


@lru_cache
def get_settings() -> AuditSettings:
    return settings_or_exit(AuditSettings)
