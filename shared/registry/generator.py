"""Synthetic registries for tests and benchmarks, with well-formed 12-digit codes
(PPCCDDTTTVVV) and explicit parents: one province of cities, counties, townships and villages,
or a nation of them (31 provinces, some cities without counties)."""

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

Row = tuple[str, str, str, str]  # code, name, level, parent_code

# The provinces' two-digit codes (GB/T 2260), and the cities among them without counties
# (docs/domain.md section 1): their townships sit directly under the city.
PROVINCE_CODES = (
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65",
)  # fmt: skip
CITIES_WITHOUT_COUNTIES = {"4419": "东莞", "4420": "中山", "4604": "儋州", "6202": "嘉峪关"}


@dataclass(frozen=True)
class ProvinceShape:
    province: str = "35"
    cities: int = 10
    counties: int = 100
    townships_per_county: int = 20
    villages_per_township: int = 15


@dataclass(frozen=True)
class NationShape:
    """About China's size: ~2,800 counties, ~40,000 townships, ~600,000 villages."""

    counties: int = 2_800
    townships: int = 40_000
    villages_per_township: int = 15
    cities_per_province: int = 10
    townships_per_city_without_counties: int = 30


def generate(shape: ProvinceShape) -> Iterator[Row]:
    """Rows of one province, parents before children."""
    province = f"{shape.province}0000000000"
    yield province, f"省{shape.province}", "province", ""
    per_city = -(-shape.counties // shape.cities)
    for index in range(shape.counties):
        city_no, county_no = divmod(index, per_city)
        city = f"{shape.province}{city_no + 1:02d}00000000"
        if county_no == 0:
            yield city, f"市{city_no + 1:02d}", "city", province
        county = f"{city[:4]}{county_no + 1:02d}000000"
        yield county, f"县{city_no + 1:02d}{county_no + 1:02d}", "county", city
        yield from _townships(
            county[:6], county, shape.townships_per_county, shape.villages_per_township
        )


def generate_nation(shape: NationShape = NationShape()) -> Iterator[Row]:
    """Rows of every province, parents before children: the counties spread evenly over the
    provinces and their cities, the townships over the counties; and the cities without
    counties with townships of their own."""
    county_index = 0
    for number, code in enumerate(PROVINCE_CODES):
        counties = _share(shape.counties, len(PROVINCE_CODES), number)
        province = f"{code}0000000000"
        yield province, f"省{code}", "province", ""
        per_city = -(-counties // shape.cities_per_province)
        cities = iter(_city_codes(code))
        for index in range(counties):
            county_no = index % per_city
            if county_no == 0:
                city_code = next(cities)
                yield f"{city_code}00000000", f"市{city_code[2:]}", "city", province
            county = f"{city_code}{county_no + 1:02d}000000"
            yield county, f"县{county[:6]}", "county", f"{city_code}00000000"
            townships = _share(shape.townships, shape.counties, county_index)
            county_index += 1
            yield from _townships(county[:6], county, townships, shape.villages_per_township)
        for city_code, name in CITIES_WITHOUT_COUNTIES.items():
            if city_code.startswith(code):
                city = f"{city_code}00000000"
                yield city, name, "city", province
                yield from _townships(
                    f"{city_code}00",
                    city,
                    shape.townships_per_city_without_counties,
                    shape.villages_per_township,
                )


def _share(total: int, parts: int, index: int) -> int:
    """Part `index` of `total` split as evenly as whole numbers allow."""
    return (index + 1) * total // parts - index * total // parts


def _city_codes(province: str) -> Iterator[str]:
    """The four-digit codes of a province's cities with counties: 01, 02, … skipping those
    of cities without counties."""
    for number in range(1, 100):
        code = f"{province}{number:02d}"
        if code not in CITIES_WITHOUT_COUNTIES:
            yield code


def _townships(prefix: str, parent: str, townships: int, villages: int) -> Iterator[Row]:
    """`townships` townships under `parent`, coded from the six-digit `prefix`, each with
    `villages` villages."""
    for t in range(townships):
        township = f"{prefix}{100 + t:03d}000"
        yield township, f"乡镇{prefix[2:]}-{t + 1:02d}", "township", parent
        for v in range(villages):
            village = f"{township[:9]}{201 + v:03d}"
            yield village, f"村{township[2:9]}-{v + 1:02d}", "village", township


def write_csv(rows: Iterator[Row], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["code", "name", "level", "parent_code"])
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count
