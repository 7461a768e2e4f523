"""The rates a unit's cases are judged by (docs/domain.md section 11), as the cases service
reports them and the application materials and the console show them."""

from enum import StrEnum


class RateName(StrEnum):
    timely_acceptance = "timely_acceptance"
    on_time_reply = "on_time_reply"
    rating_participation = "rating_participation"
    satisfaction = "satisfaction"
    repeat = "repeat"


RATE_LABELS = {
    RateName.timely_acceptance: "及时受理率",
    RateName.on_time_reply: "按期办结率",
    RateName.rating_participation: "参评率",
    RateName.satisfaction: "满意率",
    RateName.repeat: "重复信访率",
}
