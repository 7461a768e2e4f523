"""The webhooks' rules without the stack: the retry schedule, the targets refused and allowed,
the signatures a receiver checks, the keys in force around a rotation."""

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from services.webhooks.dispatcher import keys_in_force
from services.webhooks.repository import Claimed
from services.webhooks.rules import AllowList, retry_delay, target_refusal
from services.webhooks.signatures import (
    SigningKeys,
    new_secret,
    new_signing_seed,
    public_key,
    secret_bytes,
    signature_header,
)
from tests.support.webhooks import Received, verifies_v1a

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def test_the_retry_schedule_is_the_standard_one_with_jitter_then_dead() -> None:
    low = [retry_delay(n, draw=lambda: 0.0) for n in range(1, 9)]
    high = [retry_delay(n, draw=lambda: 1.0) for n in range(1, 8)]
    assert low == [5, 300, 1800, 7200, 18000, 36000, 36000, None]
    assert high == pytest.approx([6, 360, 2160, 8640, 21600, 43200, 43200])
    assert retry_delay(2, scale=0.001, draw=lambda: 0.0) == pytest.approx(0.3)


def refusal(url_host: str, port: int, *, scheme: str = "https", allowed: str = "") -> str | None:
    return target_refusal(
        scheme=scheme,
        host=url_host,
        port=port,
        addresses=[ipaddress.ip_address(url_host)],
        allowed=AllowList.parse(allowed),
    )


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "127.0.0.1",
        "10.0.0.7",
        "192.168.1.1",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "239.1.1.1",
        "fd00::1",
    ],
)
def test_addresses_that_are_not_public_are_refused(host: str) -> None:
    assert refusal(host, 443) is not None


def test_a_public_address_over_https_is_accepted_and_over_http_refused() -> None:
    assert refusal("8.8.8.8", 443) is None
    assert refusal("8.8.8.8", 80, scheme="http") is not None


def test_the_allow_list_names_networks_or_a_host_and_port() -> None:
    assert refusal("127.0.0.1", 5432, scheme="http", allowed="127.0.0.1:5432") is None
    assert refusal("127.0.0.1", 5433, scheme="http", allowed="127.0.0.1:5432") is not None
    assert refusal("169.254.169.254", 80, scheme="http", allowed="169.254.0.0/16") is None
    assert refusal("10.2.0.9", 443, allowed="10.1.0.0/16, 127.0.0.1:80") is not None


def test_a_name_with_one_internal_address_among_public_ones_is_refused() -> None:
    found = target_refusal(
        scheme="https",
        host="hooks.example.com",
        port=443,
        addresses=[ipaddress.ip_address("8.8.8.8"), ipaddress.ip_address("127.0.0.1")],
        allowed=AllowList(),
    )
    assert found is not None and "127.0.0.1" in found


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "localhost", "host:port", ":80", "a:70000"])
def test_a_malformed_allow_list_entry_is_refused(entry: str) -> None:
    with pytest.raises(ValueError):
        AllowList.parse(entry)


def test_signatures_verify_with_standardwebhooks_and_ed25519() -> None:
    secret = new_secret()
    seed = new_signing_seed()
    body = b'{"type":"unit.status_changed"}'
    timestamp = int(datetime.now(UTC).timestamp())
    header = signature_header(
        message_id="status_1",
        timestamp=timestamp,
        body=body,
        keys=[SigningKeys(secret_bytes(secret), seed)],
    )
    headers = {
        "webhook-id": "status_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": header,
    }
    received = Received("/", headers, body)
    assert Webhook(secret).verify(body, headers) == {"type": "unit.status_changed"}
    assert verifies_v1a(public_key(seed), received)
    assert not verifies_v1a(public_key(new_signing_seed()), received)
    tampered = Received("/", headers, body + b" ")
    assert not verifies_v1a(public_key(seed), tampered)


def claimed(previous_until: datetime | None) -> Claimed:
    return Claimed(
        delivery_id=1,
        subscription_id=uuid.uuid4(),
        message_id="m",
        unit_code="340722100201",
        body=b"{}",
        happened_at=NOW,
        attempts=0,
        url="https://example.com/",
        secret=b"n" * 32,
        signing_seed=b"s" * 32,
        previous_secret=b"o" * 32 if previous_until else None,
        previous_signing_seed=b"t" * 32 if previous_until else None,
        previous_until=previous_until,
    )


def test_the_replaced_keys_sign_until_the_overlap_ends() -> None:
    assert len(keys_in_force(claimed(NOW + timedelta(seconds=1)), NOW)) == 2
    assert len(keys_in_force(claimed(NOW), NOW)) == 1
    assert len(keys_in_force(claimed(None), NOW)) == 1
