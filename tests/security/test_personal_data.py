"""The petitioner reference and the keys never appear in logs or error answers, and what
people wrote never appears in logs."""

import httpx
import pytest

from tests.conftest import VILLAGE, bearer
from tests.support import events

RAW_REF = "李四 340722198805050011"
SUMMARY = "王五在镇政府门口自伤，电话13800000000"


async def test_logs_and_errors_never_carry_the_petitioner_ref_or_the_key(
    intake: httpx.AsyncClient, keys: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    key, outsider = keys["county_desk"], keys["sibling_reader"]
    prefix, key_id, secret = key.split("_")
    forged = f"{prefix}_{key_id}_{secret[::-1]}"
    accepted = events.visit(VILLAGE, petitioner_ref=RAW_REF)
    rejected = events.visit(VILLAGE, petitioner_ref=RAW_REF, headcount=0)
    conflicting = accepted | {"headcount": 2}
    incident = events.incident(VILLAGE) | {"summary": SUMMARY}

    answers = [
        await intake.post("/v1/events", json=accepted, headers=bearer(key)),
        await intake.post("/v1/events", json=rejected, headers=bearer(key)),
        await intake.post("/v1/events", json=conflicting, headers=bearer(key)),
        await intake.post("/v1/events/batch", json={"events": [rejected]}, headers=bearer(key)),
        await intake.get(f"/v1/events/{accepted['event_id']}", headers=bearer(key)),
        await intake.post("/v1/events", json=incident, headers=bearer(key)),
        await intake.post("/v1/events", json=incident | {"kind": "other"}, headers=bearer(key)),
        # Refusals are logged, with the key id the request named.
        await intake.post("/v1/events", json=accepted, headers=bearer(forged)),
        await intake.get(f"/v1/events/{accepted['event_id']}", headers=bearer(outsider)),
    ]

    assert [a.status_code for a in answers] == [202, 422, 409, 200, 200, 202, 409, 401, 403]
    logs = capfd.readouterr()
    # What follows means something only if the service's log lines reach this capture.
    assert logs.err.count("access_refused") == 2, logs.err[-2000:]
    for text in [logs.out, logs.err, *(a.text for a in answers)]:
        assert RAW_REF not in text and "340722198805050011" not in text
        for secret in (key, forged, outsider):
            assert secret.split("_")[2] not in text
    assert SUMMARY not in logs.out + logs.err and "13800000000" not in logs.out + logs.err
