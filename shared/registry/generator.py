"""Synthetic registries for tests and benchmarks: a province of cities, counties, townships
and villages with well-formed 12-digit codes (PPCCDDTTTVVV) and explicit parents."""

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class ProvinceShape:
    province: str = "35"
    cities: int = 10
    counties: int = 100
    townships_per_county: int = 20
    villages_per_township: int = 15


def generate(shape: ProvinceShape) -> Iterator[tuple[str, str, str, str]]:
    """Rows (code, name, level, parent_code), parents before children."""
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
        for t in range(shape.townships_per_county):
            township = f"{county[:6]}{100 + t:03d}000"
            yield township, f"乡镇{county[2:6]}-{t + 1:02d}", "township", county
            for v in range(shape.villages_per_township):
                village = f"{township[:9]}{201 + v:03d}"
                yield village, f"村{township[2:9]}-{v + 1:02d}", "village", township


def write_csv(rows: Iterator[tuple[str, str, str, str]], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["code", "name", "level", "parent_code"])
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count
