"""The registry's packed units answer every lookup as a plain dict of units would: checked
unit by unit against one, on a small nation (cities without counties included) and on a
registry whose top is a county (as the demo county's is)."""

from collections import Counter

import pytest

from shared.levels import CAMPAIGN_LEVELS, Level
from shared.registry.generator import NationShape, generate_nation
from shared.registry.packed import PackedBuilder, PackedUnits, UnitRef

NATION = NationShape(
    counties=70, townships=140, villages_per_township=3, townships_per_city_without_counties=2
)
COUNTY_AT_TOP = [
    ("340722000000", "枞阳县", "county", None),
    ("340722100000", "枞阳镇", "township", "340722000000"),
    ("340722100201", "甲村", "village", "340722100000"),
    ("340722100202", "乙村", "village", "340722100000"),
    ("340722101000", "横埠镇", "township", "340722000000"),
]

Row = tuple[str, str, str, str | None]


def nation_rows() -> list[Row]:
    return sorted(
        (code, name, level, parent or None) for code, name, level, parent in generate_nation(NATION)
    )


def packed(rows: list[Row], batch: int = 7) -> PackedUnits:
    builder = PackedBuilder()
    for start in range(0, len(rows), batch):
        builder.add(rows[start : start + batch])
    return builder.build()


class Reference:
    """The registry as a dict of refs, walked the obvious way."""

    def __init__(self, rows: list[Row]) -> None:
        self.units = {
            code: UnitRef(code, name, Level(level), parent) for code, name, level, parent in rows
        }

    def chain(self, code: str) -> list[UnitRef]:
        chain = []
        unit = self.units.get(code)
        while unit is not None:
            chain.append(unit)
            unit = self.units.get(unit.parent_code) if unit.parent_code else None
        return chain

    def keying_code(self, code: str) -> str:
        chain = self.chain(code)
        for level in (Level.county, Level.city):
            found = [u.code for u in chain if u.level == level]
            if found:
                return found[0]
        return chain[-1].code if chain else code

    def children(self, code: str) -> list[str]:
        return sorted(u.code for u in self.units.values() if u.parent_code == code)


@pytest.mark.parametrize("rows", [nation_rows(), COUNTY_AT_TOP], ids=["nation", "county at top"])
def test_every_unit_is_found_with_its_ancestors_children_and_keying_unit(rows: list[Row]) -> None:
    units, reference = packed(rows), Reference(rows)

    assert len(units) == len(rows)
    for code in reference.units:
        assert units.get(code) == reference.units[code]
        assert units.chain(code) == reference.chain(code)
        assert units.keying_code(code) == reference.keying_code(code)
        assert units.children(code) == reference.children(code)
    assert units.roots() == sorted(
        u.code for u in reference.units.values() if u.parent_code is None
    )
    assert [ref.code for ref in units.refs()] == [row[0] for row in rows]


def test_a_unit_is_within_itself_and_its_ancestors_only() -> None:
    rows = nation_rows()
    units, reference = packed(rows), Reference(rows)
    village = rows[-1][0]
    [township, county, city, province] = [u.code for u in reference.chain(village)[1:]]
    other_province = units.roots()[0]

    for scope in (village, township, county, city, province):
        assert units.is_within(village, scope)
    assert units.is_within(county, province) and not units.is_within(county, township)
    assert not units.is_within(village, other_province)
    assert not units.is_within("650000000999", "650000000999")


@pytest.mark.parametrize(
    "code",
    [
        "",
        "abc",
        "65000000000",
        "6500000000000",
        "６５００００００００００",
        " 50000000000",
        "650000000999",
    ],
)
def test_a_code_that_is_no_unit_finds_nothing(code: str) -> None:
    units = packed(nation_rows())

    assert units.get(code) is None
    assert units.chain(code) == []
    assert units.children(code) == []
    assert units.keying_code(code) == code
    assert not units.is_within(code, "650000000000")


def test_units_must_come_in_code_order() -> None:
    with pytest.raises(ValueError, match="ascending"):
        packed(list(reversed(COUNTY_AT_TOP)))


def test_totals_count_the_units_of_each_campaign_level_under_each_unit() -> None:
    rows = nation_rows()
    units, reference = packed(rows), Reference(rows)
    expected: Counter[tuple[str, Level]] = Counter()
    for unit in reference.units.values():
        if unit.level in CAMPAIGN_LEVELS:
            for ancestor in reference.chain(unit.code):
                expected[(ancestor.code, unit.level)] += 1

    totals = units.totals()

    for code in reference.units:
        for level in CAMPAIGN_LEVELS:
            assert totals.get(code, level) == expected[(code, level)], (code, level)
    assert totals.get("650000000999", Level.village) == 0


def test_search_finds_by_name_or_code_prefix_under_the_scope_highest_levels_first() -> None:
    rows = nation_rows()
    units = packed(rows)
    province = "440000000000"
    township = next(
        code for code, _, level, _ in rows if level == "township" and code.startswith("4401")
    )
    found = units.get(township)
    assert found is not None and found.parent_code is not None
    township_name = found.name

    by_name = units.search(township_name, within=province, limit=50)
    by_code = units.search(township[:9], within=province, limit=50)
    sibling = next(code for code in units.children(found.parent_code) if code != township)
    beyond = units.search(township_name, within=sibling, limit=50)
    villages = units.search("村", within=province, limit=3)

    assert [u.code for u in by_name][:1] == [township]
    assert all(township_name in u.name for u in by_name)
    assert [u.code for u in by_code] == [township, *units.children(township)]
    assert beyond == []
    assert [u.level for u in villages] == [Level.village] * 3
    assert [u.code for u in villages] == sorted(u.code for u in villages)
    assert all(u.code.startswith("44") for u in villages)


def test_members_are_the_units_of_a_level_under_and_including_a_unit_in_code_order() -> None:
    rows = nation_rows()
    units, reference = packed(rows), Reference(rows)

    for code in [*units.roots()[:3], "441900000000", rows[-1][0], "650000000999"]:
        for level in Level:
            expected = sorted(
                (
                    u
                    for u in reference.units.values()
                    if u.level == level and code in {a.code for a in reference.chain(u.code)}
                ),
                key=lambda u: u.code,
            )
            assert units.members(code, level) == expected, (code, level)
