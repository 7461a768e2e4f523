"""Stage: the console's province overview, the page a provincial bureau opens first. The
console runs in front of reporting over the rebuilt province (stage 6's set-up); each client
signs in with a reader key for the province and opens the overview again and again.

One client alone gives the server time of a page (the console's work plus its calls to
reporting, nothing queued); a few clients give the throughput."""

import re

import aiohttp

from bench.load import LoadResult, Refused, closed_loop
from bench.pipeline import PROVINCE_CODE
from bench.report import LatencySeries, Result, Target
from bench.reporting import PERIOD, running_reporting
from bench.services import Service
from bench.stage import BenchContext, Stage
from shared.access.models import Role

NAME = "console"
CONSOLE_APP = "services.console.main:create_app"
CLIENTS = 8
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def signed_in(session: aiohttp.ClientSession, console: Service, key: str) -> None:
    """Sign `session` in (its cookie jar keeps the console's cookies)."""
    async with session.get(f"{console.url}/signin") as form:
        found = TOKEN.search(await form.text())
    if found is None:
        raise RuntimeError("the sign-in page carries no form token")
    async with session.post(
        f"{console.url}/signin",
        data={"csrf_token": found.group(1), "key": key},
        allow_redirects=False,
    ) as answer:
        if answer.status != 303:
            raise RuntimeError(f"sign-in answered {answer.status}")


async def load_overview(
    console: Service, *, keys: list[str], seconds: float, unit: str = PROVINCE_CODE
) -> LoadResult:
    """One signed-in browser per key, each opening the unit's overview in a closed loop."""
    url = f"{console.url}/overview?unit={unit}&period={PERIOD}"
    sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in keys]
    try:
        for session, key in zip(sessions, keys, strict=True):
            await signed_in(session, console, key)

        async def send(worker: int) -> int:
            async with sessions[worker].get(url, allow_redirects=False) as page:
                await page.read()
                if page.status != 200:
                    raise Refused(page.status)
            return 1

        return await closed_loop(send, concurrency=len(keys), seconds=seconds, server=console)
    finally:
        for session in sessions:
            await session.close()


async def run(ctx: BenchContext) -> list[Result]:
    seconds = ctx.pick(full=10.0, quick=3.0)
    keys = await ctx.env.create_keys(role=Role.reader, scope_code=PROVINCE_CODE, count=CLIENTS)
    async with (
        running_reporting(ctx) as reporting,
        ctx.service("console", CONSOLE_APP, SANWU_REPORTING_URL=reporting.url) as console,
    ):
        await load_overview(console, keys=keys[:1], seconds=1.0)  # warm-up
        ctx.step(f"province overview: 1 client for {seconds:g} s")
        alone = await load_overview(console, keys=keys[:1], seconds=seconds)
        ctx.step(f"one client: {alone.describe('pages/s')}")
        ctx.step(f"province overview: {CLIENTS} clients for {seconds:g} s")
        many = await load_overview(console, keys=keys, seconds=seconds)
        ctx.step(f"{CLIENTS} clients: {many.describe('pages/s')}")
    ctx.latencies.append(LatencySeries("console, province overview", alone.latencies_ms))
    ctx.note(
        f"{NAME}: the province overview (30,000 villages) rendered by the console from "
        "reporting's summary, for signed-in readers of the province (a session each); one "
        f"client gives the server time of a page, {CLIENTS} the throughput. Summaries come "
        "from reporting's cache, as between status changes."
    )
    return [
        Result(
            f"{NAME}: province overview p50, one client",
            alone.latency(50),
            "ms",
            target=Target.at_most(100),
        ),
        Result(
            f"{NAME}: province overview p99, one client",
            alone.latency(99),
            "ms",
            target=Target.at_most(100),
        ),
        Result(f"{NAME}: province overview, {CLIENTS} clients", many.items_per_second, "pages/s"),
        Result(f"{NAME}: console CPU per overview", many.server_cpu_per_item_us, "µs"),
    ]


STAGE = Stage("console", "Console, province overview", run)
