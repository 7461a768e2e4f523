"""A relay round waits for every acknowledgement of what it sent: it fails with the first failed
delivery while later ones are still open, and only once every delivery has settled succeeds."""

import asyncio
import gc
from typing import Any

import pytest

from shared.outbox.relay import acknowledged


def deliveries(count: int) -> list["asyncio.Future[Any]"]:
    loop = asyncio.get_running_loop()
    return [loop.create_future() for _ in range(count)]


async def test_a_round_is_acknowledged_once_every_delivery_is() -> None:
    sent = deliveries(3)
    waiting = asyncio.create_task(acknowledged(sent))
    sent[0].set_result(None)
    sent[2].set_result(None)
    await asyncio.sleep(0)
    assert not waiting.done()

    sent[1].set_result(None)

    await asyncio.wait_for(waiting, 1)


async def test_the_first_failed_delivery_fails_the_round_without_waiting_for_the_rest() -> None:
    sent = deliveries(3)
    waiting = asyncio.create_task(acknowledged(sent))
    sent[0].set_result(None)
    sent[1].set_exception(ConnectionError("broker away"))

    with pytest.raises(ConnectionError, match="broker away"):
        await asyncio.wait_for(waiting, 1)
    assert not sent[2].done()


async def test_a_later_failure_is_not_reported_as_never_retrieved() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        sent = deliveries(2)
        waiting = asyncio.create_task(acknowledged(sent))
        sent[0].set_exception(ConnectionError("first"))
        with pytest.raises(ConnectionError):
            await waiting
        sent[1].set_exception(ConnectionError("second"))
        await asyncio.sleep(0)
        del sent, waiting
        gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert reported == []
