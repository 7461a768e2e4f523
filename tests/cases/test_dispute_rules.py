"""Who files, decides and reviews a dispute, on unit chains built by hand."""

from services.cases.disputes.rules import decider_of, may_file, reviewer_of
from shared.access.models import Role
from shared.access.service import Principal
from shared.levels import Level
from shared.registry.cache import UnitRef

PROVINCE = UnitRef("440000000000", "广东省", Level.province, None)
CITY = UnitRef("441900000000", "东莞市", Level.city, PROVINCE.code)
TOWN_UNDER_CITY = UnitRef("441900003000", "虎门镇", Level.township, CITY.code)
COUNTY = UnitRef("441900100000", "某县", Level.county, CITY.code)
TOWNSHIP = UnitRef("441900101000", "某镇", Level.township, COUNTY.code)
VILLAGE = UnitRef("441900101201", "某村", Level.village, TOWNSHIP.code)

VILLAGE_CHAIN = [VILLAGE, TOWNSHIP, COUNTY, CITY, PROVINCE]


def key(role: Role, scope: UnitRef | None) -> Principal:
    return Principal(key_id="a1b2c3d4e5f6", role=role, scope_code=scope.code if scope else None)


def test_the_county_above_decides_and_the_city_reviews() -> None:
    decider = decider_of(VILLAGE_CHAIN)

    assert decider == COUNTY
    assert reviewer_of(COUNTY, VILLAGE_CHAIN) == CITY


def test_a_county_or_a_township_without_county_is_decided_by_the_city_reviewed_by_province() -> (
    None
):
    for chain in ([COUNTY, CITY, PROVINCE], [TOWN_UNDER_CITY, CITY, PROVINCE]):
        assert decider_of(chain) == CITY
        assert reviewer_of(CITY, chain) == PROVINCE


def test_desks_and_bureaus_up_to_the_county_file() -> None:
    assert may_file(key(Role.desk, VILLAGE), VILLAGE_CHAIN)
    assert may_file(key(Role.desk, TOWNSHIP), VILLAGE_CHAIN)
    assert may_file(key(Role.bureau, COUNTY), VILLAGE_CHAIN)
    assert may_file(key(Role.admin, None), VILLAGE_CHAIN)


def test_readers_the_city_and_other_branches_do_not_file() -> None:
    assert not may_file(key(Role.reader, TOWNSHIP), VILLAGE_CHAIN)
    assert not may_file(key(Role.bureau, CITY), VILLAGE_CHAIN)
    assert not may_file(key(Role.desk, TOWN_UNDER_CITY), VILLAGE_CHAIN)
