"""Statuses served from memory: read once, kept until a notification names them (or says
every status), and never kept from a read that a change may have overtaken."""

import asyncio

import asyncpg

from services.reporting.cache import (
    EVERY_STATUS,
    STATUS_CHANNEL,
    Rendered,
    StatusCache,
    status_keys,
    status_payload,
)
from shared.db import asyncpg_dsn
from tests.support.reporting import (
    Reporting,
    StatusPublisher,
    demo_villages,
    status,
    wait_committed,
)
from tests.support.waiting import wait_until

VILLAGE_STATUS = ("340722100201", "2018")
OTHER_STATUS = ("340722100202", "2018")
REGISTRY_VERSION = 3


def rendered(text: str) -> Rendered:
    return Rendered(text.encode(), f'"{text}"')


def listening_cache(entries_kept: int = 100) -> StatusCache:
    cache = StatusCache(entries_kept)
    cache.listening = True
    return cache


def notified(cache: StatusCache, payload: str) -> None:
    cache.new_generation(None, 1234, STATUS_CHANNEL, payload)


class TestStatusCache:
    def test_a_status_is_kept_until_a_notification_names_it(self) -> None:
        cache = listening_cache()
        for key in (VILLAGE_STATUS, OTHER_STATUS):
            cache.put(key, cache.stamp(), REGISTRY_VERSION, rendered("/".join(key)))

        notified(cache, status_payload([VILLAGE_STATUS]))

        assert cache.get(VILLAGE_STATUS, REGISTRY_VERSION) is None
        assert cache.get(OTHER_STATUS, REGISTRY_VERSION) == rendered("/".join(OTHER_STATUS))

    def test_every_status_is_forgotten_when_the_notification_says_so_or_listening_restarts(
        self,
    ) -> None:
        cache = listening_cache()
        cache.put(VILLAGE_STATUS, cache.stamp(), REGISTRY_VERSION, rendered("a"))
        notified(cache, EVERY_STATUS)
        assert cache.get(VILLAGE_STATUS, REGISTRY_VERSION) is None

        cache.put(VILLAGE_STATUS, cache.stamp(), REGISTRY_VERSION, rendered("a"))
        cache.new_generation()  # the listener (re)connected
        assert cache.get(VILLAGE_STATUS, REGISTRY_VERSION) is None

    def test_a_read_overtaken_by_a_notification_is_not_kept(self) -> None:
        cache = listening_cache()
        stamp = cache.stamp()
        notified(cache, status_payload([OTHER_STATUS]))  # arrives while the read runs

        cache.put(VILLAGE_STATUS, stamp, REGISTRY_VERSION, rendered("maybe old"))

        assert cache.get(VILLAGE_STATUS, REGISTRY_VERSION) is None

    def test_nothing_is_kept_or_served_while_not_listening(self) -> None:
        cache = listening_cache()
        cache.put(VILLAGE_STATUS, cache.stamp(), REGISTRY_VERSION, rendered("a"))
        cache.listening = False
        assert cache.get(VILLAGE_STATUS, REGISTRY_VERSION) is None
        assert cache.stamp() is None
        cache.put(OTHER_STATUS, cache.stamp(), REGISTRY_VERSION, rendered("b"))
        cache.listening = True
        assert cache.get(OTHER_STATUS, REGISTRY_VERSION) is None

    def test_a_new_registry_version_reads_again(self) -> None:
        cache = listening_cache()
        cache.put(VILLAGE_STATUS, cache.stamp(), REGISTRY_VERSION, rendered("a"))
        assert cache.get(VILLAGE_STATUS, REGISTRY_VERSION + 1) is None

    def test_the_least_recently_read_go_first_past_the_limit(self) -> None:
        cache = listening_cache(entries_kept=2)
        first, second, third = ("1", "2018"), ("2", "2018"), ("3", "2018")
        cache.put(first, cache.stamp(), REGISTRY_VERSION, rendered("1"))
        cache.put(second, cache.stamp(), REGISTRY_VERSION, rendered("2"))
        cache.get(first, REGISTRY_VERSION)
        cache.put(third, cache.stamp(), REGISTRY_VERSION, rendered("3"))
        assert cache.get(second, REGISTRY_VERSION) is None
        assert cache.get(first, REGISTRY_VERSION) is not None

    def test_a_payload_names_its_statuses_or_every_status_past_the_notify_limit(self) -> None:
        keys = [VILLAGE_STATUS, ("340722100202", "rolling")]
        assert status_keys(status_payload(keys)) == keys
        many = [(f"{n:012d}", "2018") for n in range(1000)]
        assert status_payload(many) == EVERY_STATUS
        assert status_keys(EVERY_STATUS) is None


async def test_an_instance_serves_a_status_from_memory_until_a_change_names_it(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    period = "t-status-cache"
    village, neighbour = demo_villages()[:2]
    reader = Reporting(reporting.settings.model_copy(update={"reporting_run_consumer": False}))
    await reader.start()
    try:

        async def three_no(code: str) -> bool:
            response = await reader.get(
                f"/v1/units/{code}/status", keys["county_reader"], period=period
            )
            assert response.status_code == 200, response.text
            answer: bool = response.json()["three_no"]
            return answer

        await wait_until(
            lambda: _listening(reader), message="the second instance to listen for statuses"
        )
        sent = await publisher.publish(status(neighbour, period, 1, three_no=True))
        await wait_committed(reporting.settings, sent)
        assert await three_no(village) and await three_no(neighbour)
        # A row changed behind the read model's back (no notification) is not seen: the
        # instance answers from memory.
        await _change_without_notifying(reporting, neighbour, period)
        assert await three_no(neighbour)

        sent = await publisher.publish(status(village, period, 1))
        await wait_committed(reporting.settings, sent)

        async def village_changed() -> bool:
            return not await three_no(village)

        await wait_until(village_changed, timeout=5, message="the village's status to be renewed")
        assert await three_no(neighbour)  # a change to another unit left it kept
    finally:
        await reader.stop()


async def test_statuses_first_read_at_the_same_moment_each_answer_their_own_unit(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    """First reads asked together are read from the database together (one statement for
    all): each answer is its own unit's, whether it has a stored status or none."""
    period = "t-status-cache"
    villages = demo_villages()[2:10]
    counted = {code: n + 1 for n, code in enumerate(villages[::2])}  # every other village
    for code, collective in counted.items():
        sent = await publisher.publish(status(code, period, 1, counts={"collective": collective}))
        await wait_committed(reporting.settings, sent)
    reporting.service.statuses.forget(None)

    responses = await asyncio.gather(
        *(
            reporting.get(f"/v1/units/{code}/status", keys["county_reader"], period=period)
            for code in villages
        )
    )

    for code, response in zip(villages, responses, strict=True):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["unit"]["code"] == code
        assert body["counts"]["collective"] == counted.get(code, 0)
        assert body["three_no"] is (code not in counted)
        assert len(body["counting_event_ids"]) == counted.get(code, 0)


async def _listening(reader: Reporting) -> bool:
    await asyncio.sleep(0)
    return bool(reader.service.statuses.listening)


async def _change_without_notifying(reporting: Reporting, code: str, period: str) -> None:
    """The unit's stored status made not three-no, straight in the read model."""
    connection = await asyncpg.connect(asyncpg_dsn(reporting.settings.database_url))
    try:
        changed = await connection.execute(
            "UPDATE reporting.unit_status SET three_no = false "
            "WHERE unit_code = $1 AND period = $2",
            code,
            period,
        )
        assert changed == "UPDATE 1"
    finally:
        await connection.close()
