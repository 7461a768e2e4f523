from prometheus_client import Counter

deadlines_not_computable = Counter(
    "sanwu_cases_deadlines_not_computable_total",
    "Deadlines asked for that reach into a year the working-day calendar does not cover",
    ["limit"],
)
