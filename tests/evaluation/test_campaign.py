"""The campaign file is checked when loaded: every error names the line it is on. The shipped
file is the plan's own campaign."""

from datetime import date
from pathlib import Path

import pytest

from shared import campaign
from shared.campaign import CampaignFileError
from shared.levels import Level

SHIPPED = Path(__file__).resolve().parents[2] / "campaign" / "zongyang-2018.yaml"
TEXT = SHIPPED.read_text(encoding="utf-8")


def line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if fragment in line)


def broken(old: str, new: str) -> str:
    assert old in TEXT
    return TEXT.replace(old, new, 1)


EXTRA_PERIOD = '  - id: "{id}"\n    start: 2019-03-01\n    end: 2019-06-30\n'
CASES = [
    (
        "unknown level in the rules",
        broken("  village:     #", "  hamlet:      #"),
        "hamlet:",
        "hamlet",
    ),
    (
        "unknown level in the targets",
        broken("  village: 0.5", "  hamlet: 0.5"),
        "hamlet: 0.5",
        "hamlet",
    ),
    ("impossible date", broken("end: 2018-12-31", "end: 2018-02-30"), "end: 2018-02-30", "date"),
    (
        "month out of range",
        broken("start: 2018-04-30", "start: 2018-13-01"),
        "start: 2018-13-01",
        "date",
    ),
    ("not a date", broken("end: 2018-12-31", "end: soon"), "end: soon", "date"),
    ("empty period id", broken('id: "2018"', 'id: ""'), 'id: ""', "at least 1 character"),
    (
        "period id listed twice",
        broken("calendar_years_from", EXTRA_PERIOD.format(id="2018") + "calendar_years_from"),
        'id: "2018"',
        "appears twice",
    ),
    (
        "period id listed and generated",
        broken('id: "2018"', 'id: "2020"'),
        'id: "2020"',
        "generated too",
    ),
    (
        "threshold below 1",
        broken(
            "threshold: 5, comparison: ge, destinations: [county",
            "threshold: 0, comparison: ge, destinations: [county",
        ),
        "threshold: 0",
        "greater than or equal to 1",
    ),
    (
        "unknown comparison",
        broken("comparison: gt", "comparison: over"),
        "comparison: over",
        "comparison",
    ),
]


@pytest.mark.parametrize(("name", "text", "fragment", "message"), CASES, ids=[c[0] for c in CASES])
def test_an_invalid_file_names_the_line(name: str, text: str, fragment: str, message: str) -> None:
    expected_line = line_of(text, fragment)
    if name == "period id listed twice":  # the second of the two
        expected_line = len(TEXT[: TEXT.index("calendar_years_from")].splitlines()) + 1

    with pytest.raises(CampaignFileError) as raised:
        campaign.parse(text, source="campaign.yaml", today=date(2026, 11, 28))

    assert f"campaign.yaml: line {expected_line}:" in str(raised.value)
    assert message in str(raised.value)


def test_the_shipped_campaign_is_the_plan() -> None:
    plan = campaign.load(SHIPPED, today=date(2026, 11, 28))

    first = plan.period("2018")
    assert first is not None and (first.start, first.end) == (date(2018, 4, 30), date(2018, 12, 31))
    assert plan.period_ids() == ["2018", *(str(y) for y in range(2019, 2027)), "rolling"]
    assert plan.targets == {Level.county: 1.0, Level.township: 0.4, Level.village: 0.5}
    assert set(plan.rules) == {Level.county, Level.township, Level.village}
