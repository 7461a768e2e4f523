"""The summary cache: a summary is rendered once per read-model generation, however many
requests ask for it at the same moment."""

import asyncio

from services.reporting.cache import Rendered, RenderedCache

KEY = ("340722000000", "2018")


class CountedRendering:
    """A rendering that waits until released, counting how often it was started."""

    def __init__(self) -> None:
        self.started = 0
        self.release = asyncio.Event()

    async def __call__(self) -> Rendered:
        self.started += 1
        await self.release.wait()
        return Rendered(f'{{"rendering":{self.started}}}'.encode(), f'"{self.started}"')


def listening_cache() -> RenderedCache:
    cache = RenderedCache()
    cache.listening = True
    return cache


async def test_concurrent_requests_for_one_summary_share_one_rendering() -> None:
    cache, render = listening_cache(), CountedRendering()
    waiting = [
        asyncio.create_task(cache.get_or_render(KEY, cache.stamp(1), render)) for _ in range(50)
    ]
    await asyncio.sleep(0.01)
    render.release.set()

    answers = await asyncio.gather(*waiting)

    assert render.started == 1
    assert {a.body for a in answers} == {b'{"rendering":1}'}
    assert await cache.get_or_render(KEY, cache.stamp(1), render) == answers[0]  # kept
    assert render.started == 1


async def test_a_change_starts_a_new_rendering_and_a_caller_leaving_cancels_none() -> None:
    cache, render = listening_cache(), CountedRendering()
    render.release.set()
    await cache.get_or_render(KEY, cache.stamp(1), render)
    cache.new_generation()
    render.release.clear()
    leaving = asyncio.create_task(cache.get_or_render(KEY, cache.stamp(1), render))
    staying = asyncio.create_task(cache.get_or_render(KEY, cache.stamp(1), render))
    await asyncio.sleep(0.01)
    leaving.cancel()
    render.release.set()

    assert (await staying).body == b'{"rendering":2}'
    assert render.started == 2


async def test_without_listening_every_request_renders() -> None:
    cache, render = RenderedCache(), CountedRendering()
    render.release.set()
    for _ in range(3):
        await cache.get_or_render(KEY, cache.stamp(1), render)
    assert render.started == 3
