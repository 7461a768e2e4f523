"""The synthetic national registry: China's size, well formed, with the cities that have no
counties."""

from collections import Counter

from shared.registry.generator import CITIES_WITHOUT_COUNTIES, NationShape, generate_nation


def test_the_nation_has_about_chinas_units_each_coded_once_and_after_its_parent() -> None:
    rows = list(generate_nation())
    levels = Counter(level for _, _, level, _ in rows)

    assert levels["province"] == 31
    assert levels["county"] == 2_800
    assert 40_000 <= levels["township"] <= 40_200
    assert 600_000 <= levels["village"] <= 603_000
    seen: set[str] = set()
    for code, _, _, parent in rows:
        assert code not in seen and (parent == "" or parent in seen), code
        assert len(code) == 12 and code.isdigit()
        seen.add(code)


def test_cities_without_counties_hold_townships_directly() -> None:
    shape = NationShape(counties=62, townships=62, villages_per_township=1)
    rows = list(generate_nation(shape))
    level_of = {code: level for code, _, level, _ in rows}

    for prefix in CITIES_WITHOUT_COUNTIES:
        city = f"{prefix}00000000"
        under = [code for code, _, level, parent in rows if parent == city]
        assert level_of[city] == "city" and under
        assert {level_of[code] for code in under} == {"township"}
