"""Dynamic management (动态管理): the applications service reads the status topic as a consumer
group of its own into its view of statuses (newer version wins, each status applied once) and
flags at once every unit that stops being three-no while under review or holding the title,
naming the events; three-no again clears the flag. Each flag and clearing is a step of the
history, published to the applications topic. Each test works in a period of its own."""

from pathlib import Path

from aiokafka import TopicPartition

from services.applications.config import ApplicationsSettings
from services.applications.main import create_app
from services.applications.workflow import UnitState
from shared.access.models import Role
from shared.application_steps import ApplicationStep, StepAction
from shared.config import DEFAULT_CAMPAIGN_FILE
from shared.db import Database
from shared.messages import parse_application_step
from tests.conftest import COUNTY, DEMO_UNITS, SIBLING_VILLAGE, TOWNSHIP, VILLAGE
from tests.support import events
from tests.support.app import serve
from tests.support.dead_letters import dead_letter_reasons
from tests.support.dynamic import (
    Applications,
    put_application,
    steps_of,
    stored_statuses,
    unit_row,
)
from tests.support.messages import parsed_from_topic
from tests.support.pipeline import running_pipeline
from tests.support.reporting import StatusPublisher, status, wait_committed
from tests.support.stack import without_user
from tests.support.waiting import poll

VILLAGES = [f"340722100{n:03d}" for n in range(201, 206)]  # villages of 枞阳镇


async def applied(dynamic: Applications, publisher: StatusPublisher, *statuses: object) -> None:
    """Publish the statuses and wait until the service's group has committed past them."""
    sent = await publisher.publish(*statuses)  # type: ignore[arg-type]
    await wait_committed(
        dynamic.settings,  # type: ignore[arg-type]
        sent,
        group=dynamic.settings.consumer_group,
    )


class TestStatusView:
    async def test_newer_version_wins_and_an_older_one_changes_nothing(
        self, dynamic: Applications, status_publisher: StatusPublisher, db: Database
    ) -> None:
        period = "t-dyn-versions"
        newer = status(VILLAGE, period, 3, three_no=False)
        older = status(VILLAGE, period, 2, three_no=True)
        other = status(SIBLING_VILLAGE, period, 1, three_no=True)

        await applied(dynamic, status_publisher, newer, older, other)

        assert await stored_statuses(db, period) == {
            VILLAGE: (3, False, newer.counting_event_ids),
            SIBLING_VILLAGE: (1, True, []),
        }

    async def test_the_group_is_the_services_own(
        self, dynamic: Applications, dynamic_settings: ApplicationsSettings
    ) -> None:
        group = dynamic.consumer.group_id
        assert group == f"{dynamic_settings.topic_prefix}applications"
        assert dynamic.consumer.topic == dynamic_settings.status_topic

    async def test_a_malformed_status_is_dead_lettered_and_stores_nothing(
        self, dynamic: Applications, status_publisher: StatusPublisher, db: Database
    ) -> None:
        period = "t-dyn-malformed"
        good = status(VILLAGE, period, 1, three_no=False)
        wrong_key = status(SIBLING_VILLAGE, period, 1, three_no=False)
        sent = await status_publisher.publish_raw(
            [
                (b"340722100201:" + period.encode(), b"{not json"),
                (b"someone-else:" + period.encode(), wrong_key.model_dump_json().encode()),
                (good.key, good.model_dump_json().encode()),
            ]
        )
        await wait_committed(
            dynamic.settings,  # type: ignore[arg-type]
            sent,
            group=dynamic.settings.consumer_group,
        )

        assert await stored_statuses(db, period) == {VILLAGE: (1, False, good.counting_event_ids)}
        reasons = await dead_letter_reasons(dynamic.settings, sent, by="applications")
        assert reasons[0] is not None and "not a unit status" in reasons[0], reasons
        assert reasons[1] is not None and "is not unit_code:period" in reasons[1], reasons
        assert reasons[2] is None, reasons


class TestFlags:
    async def test_losing_three_no_flags_units_under_review_or_holding_the_title(
        self, dynamic: Applications, status_publisher: StatusPublisher, db: Database
    ) -> None:
        period = "t-dyn-flag"
        submitted, recommended, awarded, proposed, returned = VILLAGES
        live = await put_application(
            db,
            period=period,
            units={
                submitted: UnitState.submitted,
                recommended: UnitState.recommended,
                awarded: UnitState.awarded,
            },
        )
        draft = await put_application(db, period=period, units={proposed: UnitState.proposed})
        closed = await put_application(db, period=period, units={returned: UnitState.returned})
        lost = {code: status(code, period, 1, three_no=False) for code in VILLAGES}

        await applied(dynamic, status_publisher, *lost.values())

        for code in (submitted, recommended, awarded):
            row = await unit_row(db, live, code)
            assert row.flag_since == lost[code].changed_at
            assert row.flag_event_ids == lost[code].counting_event_ids
        assert (await unit_row(db, draft, proposed)).flag_since is None
        assert (await unit_row(db, closed, returned)).flag_since is None
        flags = [s for s in await steps_of(db, live) if s["action"] == "flagged"]
        assert sorted(s["unit_code"] for s in flags) == sorted([submitted, recommended, awarded])
        for flag in flags:
            assert flag["key_id"] is None and flag["role"] is None  # the service's own step
            assert flag["detail"]["event_ids"] == lost[flag["unit_code"]].counting_event_ids
            assert flag["detail"]["status_version"] == 1
        assert [s["action"] for s in await steps_of(db, draft)] == ["created"]

    async def test_flag_steps_are_published_keyed_by_county(
        self, dynamic: Applications, status_publisher: StatusPublisher, db: Database
    ) -> None:
        period = "t-dyn-publish"
        application_id = await put_application(
            db, period=period, units={VILLAGE: UnitState.awarded}
        )
        lost = status(VILLAGE, period, 1, three_no=False)

        await applied(dynamic, status_publisher, lost)

        async def published() -> list[ApplicationStep]:
            """The flag steps of the application, through the one parser of steps (so keyed
            by the county)."""
            steps = await parsed_from_topic(
                dynamic.settings,
                dynamic.settings.application_topic,
                parse_application_step,
                keys={COUNTY.encode()},
            )
            return [
                s
                for s in steps
                if s.application_id == application_id and s.action == StepAction.flagged
            ]

        [message] = await poll(published, timeout=20, message="the flag step to be published")
        assert message.unit_code == VILLAGE and message.period == period
        assert message.detail["event_ids"] == lost.counting_event_ids
        assert (message.key_id, message.role, message.scope_code) == (None, None, None)

    async def test_three_no_again_clears_the_flag(
        self, dynamic: Applications, status_publisher: StatusPublisher, db: Database
    ) -> None:
        period = "t-dyn-clear"
        application_id = await put_application(
            db, period=period, units={VILLAGE: UnitState.awarded}
        )
        lost = status(VILLAGE, period, 1, three_no=False)
        await applied(dynamic, status_publisher, lost)
        assert (await unit_row(db, application_id, VILLAGE)).flag_since is not None

        await applied(dynamic, status_publisher, status(VILLAGE, period, 2, three_no=True))

        row = await unit_row(db, application_id, VILLAGE)
        assert row.flag_since is None and row.flag_event_ids is None
        assert row.state == "awarded"
        history = await steps_of(db, application_id)
        assert [s["action"] for s in history] == ["created", "flagged", "flag_cleared"]
        assert history[-1]["detail"]["event_ids"] == lost.counting_event_ids

    async def test_a_flag_names_the_events_that_count_now_and_keeps_its_start(
        self, dynamic: Applications, status_publisher: StatusPublisher, db: Database
    ) -> None:
        period = "t-dyn-more"
        application_id = await put_application(
            db, period=period, units={VILLAGE: UnitState.recommended}
        )
        first = status(VILLAGE, period, 1, three_no=False)
        more = status(VILLAGE, period, 2, three_no=False, counts={"collective": 2})

        await applied(dynamic, status_publisher, first)
        await applied(dynamic, status_publisher, more)

        row = await unit_row(db, application_id, VILLAGE)
        assert row.flag_since == first.changed_at
        assert row.flag_event_ids == more.counting_event_ids
        assert [s["action"] for s in await steps_of(db, application_id)] == [
            "created",
            "flagged",
        ]

    async def test_reading_the_whole_topic_again_flags_nothing_twice(
        self, dynamic: Applications, status_publisher: StatusPublisher, db: Database
    ) -> None:
        period = "t-dyn-again"
        application_id = await put_application(
            db, period=period, units={VILLAGE: UnitState.awarded, TOWNSHIP: UnitState.submitted}
        )
        await applied(
            dynamic,
            status_publisher,
            status(VILLAGE, period, 1, three_no=False),
            status(TOWNSHIP, period, 1, three_no=False),
            status(TOWNSHIP, period, 2, three_no=True),
        )
        before = await steps_of(db, application_id), await stored_statuses(db, period)
        row_before = await unit_row(db, application_id, VILLAGE)

        consumer = dynamic.consumer
        await consumer.stop()
        try:
            await rewind(dynamic.settings)
        finally:
            consumer.start()
        ends = await topic_ends(dynamic.settings)
        await wait_committed(
            dynamic.settings,  # type: ignore[arg-type]
            [_Sent(tp, offset - 1) for tp, offset in ends.items() if offset],
            group=dynamic.settings.consumer_group,
            timeout=30,
        )

        assert (await steps_of(db, application_id), await stored_statuses(db, period)) == before
        assert await unit_row(db, application_id, VILLAGE) == row_before


class _Sent:
    """What `wait_committed` needs of a sent record: where it went."""

    def __init__(self, tp: TopicPartition, offset: int) -> None:
        self.topic, self.partition, self.offset = tp.topic, tp.partition, offset


async def topic_ends(settings: ApplicationsSettings) -> dict[TopicPartition, int]:
    from shared import kafka

    return await kafka.end_offsets(settings, settings.status_topic)


async def rewind(settings: ApplicationsSettings) -> None:
    """Set the service's group back to the start of the status topic (it must have no
    member)."""
    from shared import kafka

    ends = await topic_ends(settings)
    consumer = kafka.consumer(settings, group_id=settings.consumer_group)
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.commit({tp: 0 for tp in ends})
    finally:
        await consumer.stop()


class TestThroughThePipeline:
    async def test_a_late_report_flags_an_awarded_village_and_its_void_clears_it(
        self, tmp_path: Path
    ) -> None:
        """Desks post through intake; evaluation publishes the statuses; the service flags
        within seconds and clears when the report is voided."""
        keys = {"county_desk": (Role.desk, COUNTY)}
        async with running_pipeline(
            campaign_file=DEFAULT_CAMPAIGN_FILE, registry=[DEMO_UNITS], keys=keys
        ) as pipeline:
            settings = ApplicationsSettings(
                environment="test",
                database_url=without_user(pipeline.settings.database_url),
                topic_prefix=pipeline.settings.topic_prefix,
                campaign_file=DEFAULT_CAMPAIGN_FILE,
                registry_refresh_seconds=0.3,
                applications_relay_idle_poll_seconds=0.2,
            )
            async with serve(create_app(settings), "http://applications"):
                application_id = await put_application(
                    pipeline.db, period="2018", units={VILLAGE: UnitState.awarded}
                )
                report = events.incident(VILLAGE, occurred_at="2018-11-20T10:00:00+08:00")
                await pipeline.post(pipeline.keys["county_desk"], report)

                async def flagged() -> bool:
                    row = await unit_row(pipeline.db, application_id, VILLAGE)
                    return row.flag_event_ids == [report["event_id"]]

                await poll(flagged, timeout=20, message="the awarded village to be flagged")

                await pipeline.post(pipeline.keys["county_desk"], events.voided(report))

                async def cleared() -> bool:
                    return (await unit_row(pipeline.db, application_id, VILLAGE)).flag_since is None

                await poll(cleared, timeout=20, message="the flag to clear")
                history = await steps_of(pipeline.db, application_id)
                assert [s["action"] for s in history] == ["created", "flagged", "flag_cleared"]
                assert history[1]["detail"]["event_ids"] == [report["event_id"]]
                assert history[2]["detail"]["event_ids"] == [report["event_id"]]
