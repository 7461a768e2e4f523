"""One province of two cities with two counties each (registry prefix 63), keys of every role at
every scope around one of its counties, and the four services with the console in front of
them, as real processes on a database of their own (tests/support/console.py): what the
security package's permission matrix and CSRF tests act on.

The county the tests act on is A1 (`COUNTY`); its city is A; A2 is its sibling county in A;
city B, with counties B1 and B2, is the other city."""

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

from shared.access.models import Role
from shared.registry.generator import ProvinceShape, generate, write_csv
from tests.support.app import bearer
from tests.support.console import ConsoleStack, running_console
from tests.support.pipeline import KeySpecs

SHAPE = ProvinceShape(
    province="63", cities=2, counties=4, townships_per_county=4, villages_per_township=12
)
PROVINCE = "630000000000"
CITY = "630100000000"  # A
OTHER_CITY = "630200000000"  # B
COUNTY = "630101000000"  # A1
SIBLING_COUNTY = "630102000000"  # A2
OTHER_CITY_COUNTIES = ("630201000000", "630202000000")  # B1, B2
COUNTIES = (COUNTY, SIBLING_COUNTY, *OTHER_CITY_COUNTIES)
TOWNSHIP = "630101100000"  # of A1
VILLAGE = "630101100201"  # of that township

# Where a key may sit, seen from county A1's first village.
SCOPES = {
    "village": VILLAGE,
    "township": TOWNSHIP,
    "county": COUNTY,
    "sibling county": SIBLING_COUNTY,
    "city": CITY,
    "other city": OTHER_CITY,
    "province": PROVINCE,
}
ROLES = (Role.desk, Role.reader, Role.bureau)
ADMIN = "admin"
# Every role at every scope (a bureau of a village or township cannot be made on the command
# line; the services must refuse what it asks all the same), and an admin of the nation.
KEYS: KeySpecs = {
    f"{role}@{place}": (role, code) for role in ROLES for place, code in SCOPES.items()
}
KEYS[ADMIN] = (Role.admin, None)

ROWS = list(generate(SHAPE))
PARENT = {code: parent for code, _, _, parent in ROWS}
LEVEL = {code: level for code, _, level, _ in ROWS}


def chain(code: str) -> Iterator[str]:
    """The unit and its ancestors, from the registry rows themselves."""
    while code:
        yield code
        code = PARENT[code]


def within(code: str, root: str | None) -> bool:
    """Whether the unit lies in the root's subtree (None: everywhere)."""
    return root is None or root in chain(code)


def county_of(code: str) -> str:
    return next(c for c in chain(code) if LEVEL[c] == "county")


def campaign_units(county: str) -> list[str]:
    """The county's townships and villages, in code order: what it may apply with."""
    return sorted(
        code
        for code, level in LEVEL.items()
        if level in ("township", "village") and county_of(code) == county
    )


@contextlib.asynccontextmanager
async def running_province(log_dir: Path) -> AsyncIterator[ConsoleStack]:
    registry = log_dir / "province-63.csv"
    with registry.open("w", encoding="utf-8") as handle:
        write_csv(iter(ROWS), handle)
    # The fuzzing of applications sends requests without a key (401s); past the address's
    # limit, every key a service does not hold would be refused for a minute, and creating a
    # key makes the services forget those they hold.
    overrides = {"SANWU_AUTH_FAILURE_LIMIT": "100000/minute"}
    async with running_console(
        registry=[registry], keys=KEYS, log_dir=log_dir, overrides=overrides
    ) as running:
        yield running


class Bureaus:
    """The applications API, acted on with the admin key to put applications in the state a
    test needs, and to read what a refused request must have left as it was."""

    def __init__(self, client: httpx.AsyncClient, admin: str) -> None:
        self.client = client
        self.auth = bearer(admin)

    async def apply(self, *, county: str, period: str, code: str, until: str) -> dict[str, Any]:
        """An application of one unit, taken from draft through each step up to `until`
        (`draft`, `submitted`, `reviewed` or `decided`, the unit awarded)."""
        body = {
            "period": period,
            "county_code": county,
            "units": [{"code": code, "self_evaluation": f"{code} 全年无越级上访"}],
        }
        created = await self.client.post("/v1/applications", json=body, headers=self.auth)
        assert created.status_code == 201, created.text
        application: dict[str, Any] = created.json()
        steps = [
            ("submitted", "submit", None),
            ("reviewed", "review", {"decisions": [{"code": code, "decision": "approve"}]}),
            ("decided", "award", {"decisions": [{"code": code, "decision": "award"}]}),
        ]
        for state, action, decisions in steps:
            if application["state"] == until:
                break
            application = await self.act(application, action, decisions)
            assert application["state"] == state, application
        return application

    async def act(
        self, application: dict[str, Any], action: str, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        response = await self.client.post(
            f"/v1/applications/{application['application_id']}/{action}",
            json=body,
            headers=self.auth | {"If-Match": str(application["version"])},
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def application(self, application_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/applications/{application_id}", headers=self.auth)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def applied_with(self, *, county: str, period: str, code: str) -> list[str]:
        """The applications of the county for the period that hold the unit."""
        response = await self.client.get(
            "/v1/applications", params={"root": county, "period": period}, headers=self.auth
        )
        assert response.status_code == 200, response.text
        return [
            a["application_id"]
            for a in response.json()["items"]
            if code in {u["code"] for u in a["units"]}
        ]

    async def title_state(self, *, code: str, period: str) -> str | None:
        response = await self.client.get(
            "/v1/titles", params={"root": code, "period": period}, headers=self.auth
        )
        assert response.status_code == 200, response.text
        states = [t["state"] for t in response.json()["items"] if t["unit"]["code"] == code]
        return states[0] if states else None
