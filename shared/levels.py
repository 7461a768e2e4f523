"""Administrative levels and the destinations a petition visit can reach."""

from enum import StrEnum


class Level(StrEnum):
    province = "province"
    city = "city"
    county = "county"
    township = "township"
    village = "village"


class Destination(StrEnum):
    village = "village"
    township = "township"
    county = "county"
    city = "city"
    province = "province"
    national = "national"


# Height in the tree: a destination is "below" a unit when its rank is smaller.
RANK: dict[str, int] = {
    "village": 0,
    "township": 1,
    "county": 2,
    "city": 3,
    "province": 4,
    "national": 5,
}

CAMPAIGN_LEVELS: tuple[Level, ...] = (Level.county, Level.township, Level.village)

# The levels as the campaign's documents name them in Chinese (the pages, the exports and the
# application materials all use these words).
LEVEL_NAMES: dict[Level, str] = {
    Level.province: "省",
    Level.city: "市",
    Level.county: "县（区）",
    Level.township: "乡镇（街道）",
    Level.village: "村（居）",
}
