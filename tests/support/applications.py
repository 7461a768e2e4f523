"""Acting on the applications service as the bureaus do."""

from typing import Any

import httpx
import sqlalchemy as sa

from shared.db import Database
from tests.support.app import bearer


def proposed(*codes: str) -> list[dict[str, Any]]:
    return [
        {"code": code, "self_evaluation": f"{code} 全年无越级上访", "rectifications": ["台账"]}
        for code in codes
    ]


async def create(
    client: httpx.AsyncClient, key: str, *, period: str, codes: tuple[str, ...], **extra: Any
) -> httpx.Response:
    body = {"period": period, "units": proposed(*codes)} | extra
    return await client.post("/v1/applications", json=body, headers=bearer(key))


async def act(
    client: httpx.AsyncClient,
    key: str,
    *,
    application: dict[str, Any],
    action: str,
    body: dict[str, Any] | None = None,
    version: int | None = None,
) -> httpx.Response:
    """submit, review or award, with If-Match the application's version (or `version`)."""
    headers = bearer(key) | {"If-Match": f'"{version or application["version"]}"'}
    return await client.post(
        f"/v1/applications/{application['application_id']}/{action}",
        json=body,
        headers=headers,
    )


def decisions(decision: str, *codes: str, reason: str | None = None) -> dict[str, Any]:
    return {
        "decisions": [
            {"code": code, "decision": decision} | ({"reason": reason} if reason else {})
            for code in codes
        ]
    }


async def stored(db: Database, period: str) -> tuple[int, int, int]:
    """(applications, units, steps) stored for a period: what a refusal must leave unchanged."""
    async with db.engine.connect() as connection:
        row = (
            await connection.execute(
                sa.text(
                    """
                    SELECT (SELECT count(*) FROM applications.application WHERE period = :p),
                           (SELECT count(*) FROM applications.application_unit WHERE period = :p),
                           (SELECT count(*) FROM applications.step s
                              JOIN applications.application a USING (application_id)
                             WHERE a.period = :p)
                    """
                ),
                {"p": period},
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def flag(db: Database, *, application_id: str, unit_code: str, event_ids: list[str]) -> None:
    """Flag a unit as the status consumer does when it stops being three-no."""
    async with db.engine.begin() as connection:
        await connection.execute(
            sa.text(
                "UPDATE applications.application_unit SET flag_since = now(), "
                "flag_event_ids = :ids WHERE application_id = :id AND unit_code = :code"
            ),
            {"ids": event_ids, "id": application_id, "code": unit_code},
        )
