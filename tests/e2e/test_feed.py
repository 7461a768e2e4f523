"""The city's pull feed, driven through intake: pages pulled while desks keep posting, then
across a restart of reporting, hold every status change evaluation published (as read back
from the status topic), each once, in the order published."""

import asyncio
import random
from typing import Any

from tests.conftest import COUNTY
from tests.e2e.conftest import at
from tests.support import events
from tests.support.pipeline import Pipeline
from tests.support.reporting import demo_townships, demo_villages
from tests.support.waiting import wait_until

PERIOD = "t-e2e-feed"
Change = tuple[str, str, int, bool]  # unit, period, version, three_no


async def pull(pipeline: Pipeline, *, since: str | None, limit: int) -> tuple[list[Change], str]:
    params: dict[str, Any] = {"root": COUNTY, "limit": limit}
    if since is not None:
        params["since"] = since
    response = await pipeline.reporting.get(
        "/v1/feed/status-changes", pipeline.keys["county_reader"], **params
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["items"]) <= limit
    changes = [(i["unit_code"], i["period"], i["version"], i["three_no"]) for i in body["items"]]
    return changes, body["next_cursor"]


async def pull_to_end(pipeline: Pipeline, since: str | None) -> tuple[list[Change], str]:
    changes: list[Change] = []
    while True:
        page, since = await pull(pipeline, since=since, limit=1000)
        changes += page
        if not page:
            assert since is not None
            return changes, since


class Desks:
    """Random events under a few townships of the county, posted round by round."""

    def __init__(self, pipeline: Pipeline, seed: int) -> None:
        self.pipeline = pipeline
        self.rng = random.Random(seed)
        self.villages = [v for t in demo_townships()[5:8] for v in demo_villages(t)]
        self.fresh = list(self.villages)
        self.rng.shuffle(self.fresh)
        self.posted: list[dict[str, Any]] = []

    def when(self) -> str:
        return at(
            PERIOD, f"{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}T10:00:00+08:00"
        )

    def round(self) -> list[dict[str, Any]]:
        rng = self.rng
        # One village that has had nothing yet, so every round changes at least one status.
        batch = [
            events.visit(
                self.fresh.pop(), destination="county", headcount=5, occurred_at=self.when()
            )
        ]
        for _ in range(rng.randint(2, 6)):
            visits = [e for e in self.posted if e["type"] == "petition_visit"]
            roll = rng.random()
            if visits and roll < 0.15:
                batch.append(events.voided(rng.choice(visits)))
            elif visits and roll < 0.3:
                batch.append(events.reattributed(rng.choice(visits), rng.choice(self.villages)))
            elif roll < 0.4:
                batch.append(events.incident(rng.choice(self.villages), occurred_at=self.when()))
            else:
                batch.append(
                    events.visit(
                        rng.choice(self.villages),
                        destination=rng.choice(["county", "city", "province"]),
                        headcount=rng.choice([1, 4, 5, 6]),
                        skip_level=rng.random() < 0.2,
                        occurred_at=self.when(),
                    )
                )
        self.posted += batch
        return batch

    async def post_round(self) -> None:
        await self.pipeline.post(self.pipeline.keys["county_desk"], *self.round())


async def test_pages_pulled_while_desks_post_and_after_a_restart_hold_each_change_once_in_order(
    pipeline: Pipeline,
) -> None:
    await pipeline.drained()
    _, start = await pull_to_end(pipeline, None)
    desks = Desks(pipeline, seed=5)
    pulled: list[Change] = []
    pulled_while_posting = 0
    posting_done = asyncio.Event()
    cursor = start

    async def puller() -> None:
        nonlocal cursor, pulled_while_posting
        while True:
            finished = posting_done.is_set()
            page, cursor = await pull(pipeline, since=cursor, limit=3)
            pulled.extend(page)
            if not finished:
                pulled_while_posting += len(page)
            elif not page:
                return
            if not page:
                await asyncio.sleep(0.02)

    async def poster() -> None:
        for _ in range(10):
            seen = len(pulled)
            await desks.post_round()

            async def more_pulled(seen: int = seen) -> bool:
                return len(pulled) > seen

            # The next round only once the feed has shown something new: pulls and posts
            # interleave however fast the pipeline is.
            await wait_until(more_pulled, message="the feed to show the round's changes")

    pulling = asyncio.create_task(puller())
    try:
        await poster()
        await pipeline.drained()
    finally:
        posting_done.set()
    await pulling
    assert pulled_while_posting > 0

    # Reporting stops; desks post on; evaluation publishes; reporting starts again and the
    # pull goes on from the last cursor.
    await pipeline.reporting.stop()
    try:
        for _ in range(3):
            await desks.post_round()
        await pipeline.evaluated()
    finally:
        await pipeline.reporting.start()
    await pipeline.drained()
    after_restart, _ = await pull_to_end(pipeline, cursor)
    assert after_restart, "the changes made while reporting was down are missing"
    pulled += after_restart

    published = [
        (s.unit_code, s.period, s.version, s.three_no)
        for s in await pipeline.published_statuses()
        if s.period == PERIOD
    ]
    ours = [c for c in pulled if c[1] == PERIOD]
    assert len(ours) == len(set(ours)), "a change was pulled twice"
    assert set(ours) == set(published)
    assert len(published) == len(set(published))
    for unit in {c[0] for c in published}:
        versions = [c[2] for c in ours if c[0] == unit]
        assert versions == [c[2] for c in published if c[0] == unit]
        assert versions == list(range(1, len(versions) + 1))
    # The pages, joined, are the feed itself: one pull from the same start gives them again.
    again, _ = await pull_to_end(pipeline, start)
    assert again == pulled
