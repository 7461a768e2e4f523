"""A new calendar-year period exists from the first moment of its year (Asia/Shanghai) in every
service, without a restart. The clock is given to the app: no test waits for New Year."""

from datetime import UTC, date, datetime, timedelta

from services.reporting.config import ReportingSettings
from services.reporting.main import create_app
from shared import campaign as campaign_file
from shared.campaign import SHANGHAI, CurrentCampaign, Period
from shared.config import DEFAULT_CAMPAIGN_FILE
from tests.conftest import COUNTY, VILLAGE, bearer, serve

NEW_YEARS_EVE = datetime(2030, 12, 31, 23, 59, 30, tzinfo=SHANGHAI)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def test_a_calendar_year_period_appears_at_the_first_moment_of_its_year() -> None:
    campaign = campaign_file.load(DEFAULT_CAMPAIGN_FILE, today=NEW_YEARS_EVE.date())
    clock = Clock(NEW_YEARS_EVE)
    current = CurrentCampaign(campaign, now=clock)
    assert current.get().period("2030") is not None
    assert current.get().period("2031") is None

    clock.at = datetime(2030, 12, 31, 16, 0, tzinfo=UTC)  # midnight in Shanghai

    assert current.get().period("2031") == Period("2031", date(2031, 1, 1), date(2031, 12, 31))
    assert current.get().period("2018") == campaign.period("2018")  # listed ones stay
    assert current.get().is_period("rolling")


def test_a_campaign_without_calendar_years_never_grows() -> None:
    text = DEFAULT_CAMPAIGN_FILE.read_text(encoding="utf-8").replace(
        "calendar_years_from: 2019", ""
    )
    campaign = campaign_file.parse(text)
    current = CurrentCampaign(campaign, now=Clock(datetime(2031, 6, 1, tzinfo=UTC)))
    assert current.get().period_ids() == ["2018", "rolling"]


async def test_reporting_serves_a_new_years_period_without_a_restart(
    reporting_settings: ReportingSettings, keys: dict[str, str]
) -> None:
    clock = Clock(NEW_YEARS_EVE)
    # Reads only: the session's reporting instance consumes the status topic.
    settings = reporting_settings.model_copy(update={"reporting_run_consumer": False})
    headers = bearer(keys["admin"])
    async with serve(create_app(settings, clock=clock), "http://reporting") as client:
        before = await client.get(
            f"/v1/units/{VILLAGE}/status", params={"period": "2031"}, headers=headers
        )
        assert before.status_code == 404
        assert before.headers["content-type"].startswith("application/problem+json")

        clock.at = NEW_YEARS_EVE + timedelta(seconds=31)

        status = await client.get(
            f"/v1/units/{VILLAGE}/status", params={"period": "2031"}, headers=headers
        )
        assert status.status_code == 200, status.text
        assert status.json()["three_no"] is True and status.json()["period"] == "2031"
        summary = await client.get(
            "/v1/reports/summary", params={"root": COUNTY, "period": "2031"}, headers=headers
        )
        assert summary.status_code == 200, summary.text
        villages = summary.json()["levels"]["village"]
        assert villages["three_no"] == villages["total"] > 0
