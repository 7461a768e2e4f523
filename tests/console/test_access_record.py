"""The console's part of the access record: every sign-in, refused sign-in and sign-out is in
the key audit; failed sign-ins are limited per key as well as per client address; and the
console's own 401 and 403 pages are logged and counted as the services' refusals are."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import structlog
from prometheus_client import REGISTRY

from services.console.main import create_app
from shared.access import service as access_service
from shared.db import Database
from tests.support.app import serve
from tests.support.console import (
    Clock,
    ConsoleStack,
    csrf_of,
    key_id,
    new_key,
    sessions_of,
    sign_in,
)

CLIENT = "127.0.0.1"  # the address an in-process client comes from
ELSEWHERE = "192.0.2.7"


def wrong_secret(key: str) -> str:
    return key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")


async def audit_of(db: Database, key: str) -> list[tuple[str, str]]:
    async with db.engine.begin() as connection:
        entries = await access_service.audit(connection, key_id=key_id(key))
    return [(str(e["action"]), str(e["actor"])) for e in entries]


def refused_count(status: str, reason: str) -> float:
    labels = {"status": status, "reason": reason}
    return REGISTRY.get_sample_value("sanwu_access_refused_total", labels) or 0.0


def refusals_in(logs: list[dict[str, Any]]) -> list[tuple[int, str, str | None, str]]:
    return [
        (e["status"], e["reason"], e["key_id"], e["path"])
        for e in logs
        if e["event"] == "access_refused"
    ]


@asynccontextmanager
async def console_at(
    console_stack: ConsoleStack, clock: Clock, **settings: object
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """A console with its own settings, and two clients of it: one from CLIENT, one from
    ELSEWHERE."""
    app = create_app(console_stack.console_settings(**settings), clock=clock)
    async with serve(app, "http://console") as here:
        transport = httpx.ASGITransport(app=app, client=(ELSEWHERE, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as there:
            yield here, there


async def test_sign_ins_refused_sign_ins_and_sign_outs_are_in_the_key_audit(
    console: httpx.AsyncClient, db: Database
) -> None:
    key = await new_key(db)
    refused_before = refused_count("401", "unknown")

    with structlog.testing.capture_logs() as logs:
        refused = await sign_in(console, wrong_secret(key))
    signed_in = await sign_in(console, key)
    signed_out = await console.post(
        "/signout", data={"csrf_token": await csrf_of(console, "/overview")}
    )

    assert (refused.status_code, signed_in.status_code, signed_out.status_code) == (401, 303, 303)
    by = f"console:{CLIENT}"
    assert (await audit_of(db, key))[1:] == [
        ("sign_in_refused", by),
        ("signed_in", by),
        ("signed_out", by),
    ]
    assert refusals_in(logs) == [(401, "unknown", key_id(key), "/signin")]
    assert refused_count("401", "unknown") == refused_before + 1
    assert key.split("_")[2] not in str(logs)


async def test_failed_sign_ins_of_one_key_are_limited_from_any_address(
    console_stack: ConsoleStack, clock: Clock, db: Database
) -> None:
    key, other = await new_key(db), await new_key(db)

    async with console_at(console_stack, clock, console_sign_in_failure_limit="3/minute") as (
        here,
        there,
    ):
        failed = [
            (await sign_in(client, wrong_secret(key))).status_code for client in (here, there, here)
        ]
        # The key's own secret, from an address that failed once: the key is held back.
        right_key = await sign_in(there, key)
        # Another key from the address that failed twice is not.
        other_key = await sign_in(here, other)

    assert failed == [401, 401, 401]
    assert right_key.status_code == 429 and "失败次数过多" in right_key.text
    assert await sessions_of(db, key_id(key)) == []
    assert other_key.status_code == 303
    assert [action for action, _ in await audit_of(db, key)] == ["created"] + [
        "sign_in_refused"
    ] * 3


async def test_an_address_past_its_failures_may_not_sign_in_even_with_a_key_held_in_memory(
    console_stack: ConsoleStack, clock: Clock, db: Database
) -> None:
    held = await new_key(db)
    guesses = [await new_key(db) for _ in range(3)]

    async with console_at(console_stack, clock, auth_failure_limit="3/minute") as (here, there):
        assert (await sign_in(here, held)).status_code == 303  # now held by the key cache
        for guess in guesses:
            assert (await sign_in(here, wrong_secret(guess))).status_code == 401
        again = await sign_in(here, held)
        elsewhere = await sign_in(there, held)

    assert again.status_code == 429
    assert elsewhere.status_code == 303


async def test_the_console_pages_own_401_and_403_are_logged_and_counted(
    console_stack: ConsoleStack, clock: Clock
) -> None:
    reader = console_stack.keys["township_reader"]
    before = {
        reason: refused_count(status, reason)
        for status, reason in (("403", "scope"), ("403", "csrf"), ("401", "missing"))
    }

    async with console_at(console_stack, clock) as (signed_in, stranger):
        await sign_in(signed_in, reader)
        with structlog.testing.capture_logs() as logs:
            out_of_scope = await signed_in.get("/overview?unit=340722000000&period=2018")
            forged = await signed_in.post("/signout", data={"csrf_token": "forged"})
            no_session = await stranger.get("/overview")

    assert (out_of_scope.status_code, forged.status_code) == (403, 403)
    assert no_session.status_code == 303  # to the sign-in page
    assert refusals_in(logs) == [
        (403, "scope", key_id(reader), "/overview"),
        (403, "csrf", key_id(reader), "/signout"),
        (401, "missing", None, "/overview"),
    ]
    assert refused_count("403", "scope") == before["scope"] + 1
    assert refused_count("403", "csrf") == before["csrf"] + 1
    assert refused_count("401", "missing") == before["missing"] + 1
