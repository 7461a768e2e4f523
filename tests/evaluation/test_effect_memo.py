"""The effect calculator remembers each unit's chain of campaign levels, but a nation's units
do not all stay: past the memo's limit it starts over, and the chains it gives are the same."""

from datetime import UTC, datetime

import pytest

from services.evaluation.live import effects
from services.evaluation.live.effects import EffectCalculator
from shared import campaign as campaign_file
from shared.config import DEFAULT_CAMPAIGN_FILE
from shared.levels import Level
from shared.registry.cache import UnitRef


class Villages:
    """A county, a township and villages under it, as the registry answers for them."""

    version = 1

    def __init__(self, count: int) -> None:
        county = UnitRef("340722000000", "县", Level.county, None)
        township = UnitRef("340722100000", "镇", Level.township, county.code)
        self.units = {u.code: u for u in (county, township)}
        for n in range(count):
            code = f"340722100{n + 1:03d}"
            self.units[code] = UnitRef(code, f"村{n}", Level.village, township.code)

    def ancestors(self, code: str) -> list[UnitRef]:
        chain = []
        unit = self.units.get(code)
        while unit is not None:
            chain.append(unit)
            unit = self.units.get(unit.parent_code) if unit.parent_code else None
        return chain


def test_past_the_limit_the_memo_starts_over_and_answers_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(effects, "MEMO_LIMIT", 3)
    registry = Villages(count=8)
    calculator = EffectCalculator(
        campaign=campaign_file.load(DEFAULT_CAMPAIGN_FILE),
        registry=registry,  # type: ignore[arg-type]
    )
    villages = [code for code, unit in registry.units.items() if unit.level is Level.village]
    moment = datetime(2018, 6, 3, 1, 30, tzinfo=UTC)

    first = [calculator.meeting_slot(code, moment) for code in villages]
    chains = [calculator.chain(code) for code in villages]

    assert len(calculator._chains) <= 3
    assert [calculator.meeting_slot(code, moment) for code in villages] == first
    for code, chain in zip(villages, chains, strict=True):
        assert chain[0] == (code, Level.village)
    assert all(chain[-1] == ("340722000000", Level.county) for chain in chains)


def test_villages_of_a_township_share_its_pairs_rather_than_copies() -> None:
    registry = Villages(count=3)
    calculator = EffectCalculator(
        campaign=campaign_file.load(DEFAULT_CAMPAIGN_FILE),
        registry=registry,  # type: ignore[arg-type]
    )
    villages = [code for code, unit in registry.units.items() if unit.level is Level.village]

    chains = [calculator.chain(code) for code in villages]

    walked = [
        tuple((u.code, u.level) for u in registry.ancestors(code) if u.level is not Level.province)
        for code in villages
    ]
    assert chains == walked
    township = calculator.chain("340722100000")
    assert all(chain[1] is township[0] and chain[2] is township[1] for chain in chains)
