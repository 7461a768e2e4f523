"""Managing subscriptions over REST: who may, what they see, and the targets refused (with
nothing stored)."""

from typing import Any

import pytest

from tests.support.app import bearer
from tests.support.webhooks import Receiver
from tests.webhooks.conftest import RunningWebhooks


async def listed(webhooks: RunningWebhooks, key: str) -> list[dict[str, Any]]:
    found = await webhooks.client.get("/v1/subscriptions", headers=bearer(key))
    assert found.status_code == 200, found.text
    items: list[dict[str, Any]] = found.json()["items"]
    return items


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata address
        "http://127.0.0.1:5432/",  # loopback, a port the allow-list does not name
        "https://10.1.2.3/hook",  # private
        "https://[::1]/hook",  # loopback over IPv6
        "https://[::ffff:169.254.169.254]/hook",  # the metadata address, IPv4-mapped
        "https://0.0.0.0/hook",  # unspecified
        "https://224.0.0.1/hook",  # multicast
        "http://8.8.8.8/hook",  # public, but not over https
        "ftp://example.com/hook",
        "https://user:pass@8.8.8.8/hook",
    ],
)
async def test_a_target_deliveries_may_not_reach_is_refused_and_nothing_stored(
    webhooks: RunningWebhooks, keys: dict[str, str], url: str
) -> None:
    before = await listed(webhooks, keys["sibling_reader"])
    response = await webhooks.client.post(
        "/v1/subscriptions",
        json={"url": url, "kinds": ["status_changes"]},
        headers=bearer(keys["sibling_reader"]),
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await listed(webhooks, keys["sibling_reader"]) == before


async def test_a_target_the_allow_list_names_is_accepted_over_http(
    webhooks: RunningWebhooks, receiver: Receiver, keys: dict[str, str]
) -> None:
    url = receiver.endpoint("/allowed")
    response = await webhooks.client.post(
        "/v1/subscriptions",
        json={"url": url, "kinds": ["status_changes", "case_steps"]},
        headers=bearer(keys["sibling_reader"]),
    )
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["secret"].startswith("whsec_") and made["public_key"].startswith("whpk_")
    assert made["kinds"] == ["case_steps", "status_changes"]
    assert made["scope_code"] == "340722101000"
    assert response.headers["location"] == f"/v1/subscriptions/{made['subscription_id']}"
    assert [s["subscription_id"] for s in await listed(webhooks, keys["sibling_reader"])][
        -1
    ] == made["subscription_id"]
    assert all("secret" not in s for s in await listed(webhooks, keys["sibling_reader"]))


async def test_a_secret_given_is_used_and_a_malformed_one_refused(
    webhooks: RunningWebhooks, receiver: Receiver, keys: dict[str, str]
) -> None:
    secret = "whsec_" + "A" * 43 + "="  # 32 bytes
    body = {"url": receiver.endpoint("/given"), "kinds": ["warnings"], "secret": secret}
    made = await webhooks.client.post(
        "/v1/subscriptions", json=body, headers=bearer(keys["sibling_reader"])
    )
    assert made.status_code == 201 and made.json()["secret"] == secret
    before = await listed(webhooks, keys["sibling_reader"])
    for bad in ("whsec_" + "A" * 20, "plain-secret-without-prefix-xxxxxxxxxxxxxx"):
        refused = await webhooks.client.post(
            "/v1/subscriptions", json=body | {"secret": bad}, headers=bearer(keys["sibling_reader"])
        )
        assert refused.status_code == 422, bad
    assert await listed(webhooks, keys["sibling_reader"]) == before


async def test_only_readers_bureaus_and_admins_subscribe(
    webhooks: RunningWebhooks, receiver: Receiver, keys: dict[str, str]
) -> None:
    body = {"url": receiver.endpoint("/desk"), "kinds": ["status_changes"]}
    refused = await webhooks.client.post(
        "/v1/subscriptions", json=body, headers=bearer(keys["county_desk"])
    )
    assert refused.status_code == 403
    assert (await webhooks.client.get("/v1/subscriptions")).status_code == 401


async def test_a_subscription_is_seen_and_removed_only_within_its_scope(
    webhooks: RunningWebhooks, receiver: Receiver, keys: dict[str, str]
) -> None:
    body = {"url": receiver.endpoint("/scoped"), "kinds": ["status_changes"]}
    made = await webhooks.client.post(
        "/v1/subscriptions", json=body, headers=bearer(keys["township_reader"])
    )
    path = f"/v1/subscriptions/{made.json()['subscription_id']}"
    for other in ("sibling_reader", "county_reader"):
        assert (await webhooks.client.get(path, headers=bearer(keys[other]))).status_code == 404
        assert (await webhooks.client.delete(path, headers=bearer(keys[other]))).status_code == 404
    assert (await webhooks.client.get(path, headers=bearer(keys["admin"]))).status_code == 200
    removed = await webhooks.client.delete(path, headers=bearer(keys["township_reader"]))
    assert removed.status_code == 204
    assert (
        await webhooks.client.get(path, headers=bearer(keys["township_reader"]))
    ).status_code == 404
