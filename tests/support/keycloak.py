"""A real Keycloak for the console's sign-in tests: deploy/keycloak.sh on ports and a directory
of the tests' own (beside any local one), with the realm of deploy/keycloak/realm-sanwu.json.
Started once per test run, by the first test that asks for it, and stopped at the end. If it
cannot start, the tests that need it fail with its log: nothing is skipped."""

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "keycloak.sh"
# The realm's local-only client secret and the test users' password (realm-sanwu.json).
CLIENT_ID = "sanwu-console"
CLIENT_SECRET = "local-only-console-client-secret"
PASSWORD = "local-only-password"
# The realm's users: a county bureau's person (sanwu_role bureau, sanwu_unit the demo county),
# one whose account carries neither attribute, and one whose role claim says admin.
COUNTY_BUREAU = "zongyang-bureau"
NO_CLAIMS = "no-claims"
ADMIN_CLAIM = "admin-claim"


@dataclass(frozen=True)
class Keycloak:
    port: int

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/realms/sanwu"

    def console_env(self) -> dict[str, str]:
        """The settings of a console signing in through this Keycloak."""
        return {
            "SANWU_CONSOLE_OIDC_ISSUER": self.issuer,
            "SANWU_CONSOLE_OIDC_CLIENT_ID": CLIENT_ID,
            "SANWU_CONSOLE_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        }


def _script(verb: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(SCRIPT), verb], env=os.environ | env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        pytest.fail(f"deploy/keycloak.sh {verb} failed:\n{done.stderr[-4000:]}")


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keycloak]:
    port = free_port()
    env = {
        "SANWU_KEYCLOAK_PORT": str(port),
        "SANWU_KEYCLOAK_MANAGEMENT_PORT": str(free_port()),
        "SANWU_KEYCLOAK_DIR": str(tmp_path_factory.mktemp("keycloak")),
    }
    try:
        _script("up", env)
        yield Keycloak(port=port)
    finally:
        _script("down", env)
