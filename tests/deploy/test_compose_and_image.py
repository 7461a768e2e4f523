"""The single-host compose file and the image it shares with the cluster. No Docker engine
runs here, so both are checked statically: the compose file against the compose
specification's schema, the Dockerfile for what a build from this tree needs."""

import re

import yaml

from tests.support.manifests import COMPOSE_FILE, ROOT, compose_problems

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
SANWU_SERVICES = {"console", "intake", "evaluation", "reporting", "applications"}


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def test_the_compose_file_follows_the_compose_specification() -> None:
    assert compose_problems(compose()) == []


def test_the_compose_schema_refuses_an_unknown_key() -> None:
    document = compose()
    document["services"]["intake"]["restrat"] = "no"
    assert compose_problems(document) == [
        "services.intake: 'restrat' does not match any of the regexes: '^x-'"
    ]


def test_every_service_runs_one_image_after_the_migration() -> None:
    services = compose()["services"]
    assert SANWU_SERVICES | {"migrate", "postgres", "kafka"} == set(services)
    assert len({services[name]["image"] for name in SANWU_SERVICES | {"migrate"}}) == 1
    for name in SANWU_SERVICES:
        service = services[name]
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        port = re.search(r"--port=(\d+)", " ".join(service["command"]))
        assert port is not None, name
        assert f"127.0.0.1:{port[1]}/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["environment"]["SANWU_ENVIRONMENT"] == "production"


def test_the_dockerfile_builds_from_this_tree_as_a_non_root_user() -> None:
    """Every COPY source exists; the base is pinned by digest; the locked dependencies are
    installed before the source is copied (their layer stays cached while the code changes);
    the process runs as a numeric non-root user."""
    lines = DOCKERFILE.read_text().splitlines()
    instructions = [
        line.split(None, 1) for line in lines if line and not line.startswith(("#", " "))
    ]
    (base,) = [rest for word, rest in instructions if word == "FROM"]
    assert re.fullmatch(r"python:3\.11[\w.-]*@sha256:[0-9a-f]{64}", base), base
    copies = [rest.split() for word, rest in instructions if word == "COPY"]
    for *sources, _ in copies:
        for source in sources:
            assert (ROOT / source).exists(), source
    dependencies_only = next(i for i, line in enumerate(lines) if "--no-install-project" in line)
    first_source = next(i for i, line in enumerate(lines) if line.startswith("COPY shared"))
    assert dependencies_only < first_source
    (user,) = [rest for word, rest in instructions if word == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) > 0
