"""What authentication costs and refuses, for every service's /metrics."""

from prometheus_client import Counter

key_lookups = Counter(
    "sanwu_access_key_lookups_total", "API keys read from the database", ["found"]
)
refused = Counter(
    "sanwu_access_refused_total",
    "Requests refused for their key: 401 (reason missing, malformed, unknown, revoked, expired) "
    "and 403 (reason role or scope; the console's csrf too)",
    ["status", "reason"],
)
