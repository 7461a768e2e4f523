"""The single-host compose file and the image it shares with the cluster. No Docker engine
runs here, so both are checked statically: the compose file against the compose
specification's schema, the Dockerfile for what a build from this tree needs."""

import re

import yaml

from shared import database_roles
from shared.config import MIGRATOR_ROLE
from tests.support.manifests import COMPOSE_FILE, ROOT, compose_problems

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
SANWU_SERVICES = {
    "console",
    "intake",
    "evaluation",
    "reporting",
    "applications",
    "audit",
    "cases",
    "webhooks",
}
# The role each container logs in as.
LOGINS = {
    "migrate": "sanwu",
    "intake": "sanwu_intake",
    "evaluation": "sanwu_evaluation",
    "reporting": "sanwu_reporting",
    "applications": "sanwu_applications",
    "console": "sanwu_console",
    "audit": "sanwu_audit",
    "cases": "sanwu_cases",
    "webhooks": "sanwu_webhooks",
}
UNPRIVILEGED = {
    "LOGIN",
    "NOSUPERUSER",
    "NOCREATEDB",
    "NOCREATEROLE",
    "NOREPLICATION",
    "NOBYPASSRLS",
}
# A password in a URL, taken from deploy/.env: ${NAME:?message}.
FROM_DOT_ENV = r"\$\{(\w+):\?[^}]*\}"


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


def init_script(document: dict) -> str:
    """The SQL the postgres image runs when its data volume is first made."""
    (mounted,) = [
        config["source"]
        for config in document["services"]["postgres"]["configs"]
        if config["target"].startswith("/docker-entrypoint-initdb.d/")
    ]
    content: str = document["configs"][mounted]["content"]
    return content


def role_passwords(script: str) -> dict[str, str]:
    """Each role the script creates, with the environment variable its password is read
    from (psql's \\getenv, the statement then naming the psql variable)."""
    passwords, variable = {}, None
    for line in script.splitlines():
        if getenv := re.fullmatch(r"\\getenv password (\w+)", line.strip()):
            variable = getenv[1]
        elif create := re.match(r"CREATE ROLE (\w+) (.*);$", line.strip()):
            name, attributes = create[1], create[2]
            assert attributes.endswith("PASSWORD :'password'"), line
            assert set(attributes.split()) >= UNPRIVILEGED, line
            assert variable is not None, line
            passwords[name], variable = variable, None
    return passwords


def test_postgresql_takes_only_scram_passwords_and_its_superuser_is_no_sanwu_role() -> None:
    environment = compose()["services"]["postgres"]["environment"]
    assert "--auth=scram-sha-256" in environment["POSTGRES_INITDB_ARGS"].split()
    assert environment["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"
    assert environment["POSTGRES_USER"] not in LOGINS.values()
    assert "trust" not in str(environment)


def test_the_init_script_makes_the_migrator_and_a_role_per_service_with_no_privilege() -> None:
    """Each role logs in, with a password from the postgres container's environment (set from
    deploy/.env, never written in the script or on a command line), and may do nothing beyond
    that: the migrator owns the database, and grants the rest when it migrates."""
    document = compose()
    script = init_script(document)
    passwords = role_passwords(script)
    roles = {MIGRATOR_ROLE} | {role.name for role in database_roles.SERVICE_ROLES}
    assert set(passwords) == roles
    assert len(set(passwords.values())) == len(passwords)
    environment = document["services"]["postgres"]["environment"]
    for variable in passwords.values():
        assert re.fullmatch(FROM_DOT_ENV, environment[variable]), variable
    assert f"CREATE DATABASE sanwu OWNER {MIGRATOR_ROLE};" in script
    assert "PASSWORD '" not in script


def test_each_service_logs_in_as_its_own_role_and_only_the_migration_as_the_migrator() -> None:
    """With its role's password and no other's: no container but postgres sees the
    superuser's, and none inherits a database URL from the settings they share."""
    document = compose()
    passwords = role_passwords(init_script(document))
    superuser_password = document["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert "SANWU_DATABASE_URL" not in document["x-sanwu"]["environment"]
    for name, role in LOGINS.items():
        environment = document["services"][name]["environment"]
        login = re.fullmatch(
            rf"postgresql\+asyncpg://(\w+):{FROM_DOT_ENV}@postgres:5432/sanwu",
            environment["SANWU_DATABASE_URL"],
        )
        assert login is not None, name
        assert (login[1], login[2]) == (role, passwords[role]), name
        read = set(re.findall(FROM_DOT_ENV, str(environment)))
        assert read & set(passwords.values()) == {passwords[role]}, name
        assert superuser_password not in str(document["services"][name]), name
    migrate = " ".join(document["services"]["migrate"]["command"])
    assert "sanwu db migrate" in migrate


def test_the_audit_log_signs_with_a_key_from_dot_env_that_only_it_gets() -> None:
    """SANWU_AUDIT_SIGNING_KEY and SANWU_AUDIT_ORIGIN are read from deploy/.env (never a
    literal, never the built-in local key) and given to the audit container alone."""
    document = compose()
    audit = document["services"]["audit"]["environment"]
    for setting in ("SANWU_AUDIT_SIGNING_KEY", "SANWU_AUDIT_ORIGIN"):
        from_dot_env = re.fullmatch(FROM_DOT_ENV, audit[setting])
        assert from_dot_env is not None and from_dot_env[1] == setting, setting
    assert "SANWU_AUDIT_SIGNING_KEY_FILE" not in audit
    for name, service in document["services"].items():
        if name != "audit":
            assert "SANWU_AUDIT_SIGNING_KEY" not in str(service), name
    assert "SANWU_AUDIT_SIGNING_KEY" not in str(document["x-sanwu"])


def test_the_console_calls_each_service_where_it_listens() -> None:
    """Every SANWU_*_URL the services share names a compose service and the port its uvicorn
    listens on; the audit log's among them."""
    services = compose()["services"]
    shared = compose()["x-sanwu"]["environment"]
    urls = {name: value for name, value in shared.items() if name.endswith("_URL")}
    assert urls["SANWU_AUDIT_URL"] == "http://audit:8006"
    for name, url in urls.items():
        target = re.fullmatch(r"http://(\w+):(\d+)", url)
        assert target is not None, name
        assert f"--port={target[2]}" in services[target[1]]["command"], name
