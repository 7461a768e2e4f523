"""Least privilege in the Kubernetes manifests, rendered as the cluster gets them: every
workload logs in to PostgreSQL as its own role and to Kafka as its own principal, with only
the rights the code's tables give them; the migrator only in the Jobs that need it; the
superuser nowhere; and the public ingress routes no operational endpoint."""

import re
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from services.applications.config import ApplicationsSettings
from services.applications.main import create_app as create_applications_app
from services.audit.config import AuditSettings
from services.audit.main import create_app as create_audit_app
from services.cases.config import CasesSettings
from services.cases.main import create_app as create_cases_app
from services.console.config import ConsoleSettings
from services.console.main import create_app as create_console_app
from services.evaluation.config import EvaluationSettings
from services.evaluation.main import create_app as create_evaluation_app
from services.intake.config import IntakeSettings
from services.intake.main import create_app as create_intake_app
from services.reporting.config import ReportingSettings
from services.reporting.main import create_app as create_reporting_app
from services.webhooks.config import WebhooksSettings
from services.webhooks.main import create_app as create_webhooks_app
from shared import database_roles, kafka_rights
from shared.config import MIGRATOR_ROLE
from tests.support.manifests import K8S, OVERLAYS, Manifest, named, of_kind, pod_specs, render

pytestmark = pytest.mark.timeout(900)

POOLER = "sanwu-pg-pooler-rw"
# Who each workload is: its database role and its Kafka principal (None: it uses none).
IDENTITIES: dict[str, tuple[str | None, str | None]] = {
    "intake": ("sanwu_intake", "sanwu-intake"),
    "evaluation": ("sanwu_evaluation", "sanwu-evaluation"),
    "reporting": ("sanwu_reporting", "sanwu-reporting"),
    "applications": ("sanwu_applications", "sanwu-applications"),
    "console": ("sanwu_console", None),
    "audit": ("sanwu_audit", "sanwu-audit"),
    "cases": ("sanwu_cases", "sanwu-cases"),
    "webhooks": ("sanwu_webhooks", "sanwu-webhooks"),
    "sanwu-migrate": ("sanwu", None),
    "sanwu-topics": (None, "sanwu-admin"),
    "sanwu-units-load": ("sanwu", None),
    "sanwu-evaluation-rebuild": ("sanwu", "sanwu-evaluation"),
    "sanwu-reporting-rebuild": ("sanwu", "sanwu-reporting"),
    "sanwu-applications-rebuild": ("sanwu", "sanwu-applications"),
    "sanwu-keys": ("sanwu", None),
}
ROLE_ATTRIBUTES = ("superuser", "createdb", "createrole", "replication", "bypassrls")
# Strimzi's names of Kafka's operations and pattern types.
OPERATIONS = {"Read": "READ", "Write": "WRITE", "Create": "CREATE", "Describe": "DESCRIBE"}
OPERATIONS |= {"DescribeConfigs": "DESCRIBE_CONFIGS", "AlterConfigs": "ALTER_CONFIGS"}
OPERATIONS |= {"Delete": "DELETE", "Alter": "ALTER", "All": "ALL"}
PATTERN_TYPES = {"literal": "LITERAL", "prefix": "PREFIXED"}


@pytest.fixture(scope="module", params=OVERLAYS)
def built(request: pytest.FixtureRequest) -> tuple[Manifest, ...]:
    return render(f"overlays/{request.param}")


def config_env() -> dict[str, str]:
    lines = (K8S / "base" / "platform" / "config.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def container(pod_spec: Manifest) -> Manifest:
    (only,) = pod_spec["containers"]
    sanwu: Manifest = only
    return sanwu


def cluster(built: tuple[Manifest, ...]) -> Manifest:
    return named(built, "Cluster", "sanwu-pg")


def env_of(workload_container: Manifest) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = workload_container.get("env", [])
    return env


def database_login(workload_container: Manifest) -> tuple[str, str] | None:
    """(the Secret its user and password come from, host:port/database) of the workload's
    SANWU_DATABASE_URL; None without one. Kubernetes expands a $(VAR) only when VAR is defined
    earlier in the list: a later one would be sent literally."""
    env = env_of(workload_container)
    names = [entry["name"] for entry in env]
    if "SANWU_DATABASE_URL" not in names:
        return None
    position = names.index("SANWU_DATABASE_URL")
    url = make_url(env[position]["value"])
    secrets = set()
    for part, key in ((url.username, "username"), (url.password, "password")):
        reference = re.fullmatch(r"\$\((\w+)\)", str(part))
        assert reference, f"the URL's {key} is not taken from a Secret: {part}"
        assert reference[1] in names[:position], f"{reference[1]} is defined after the URL"
        secret_ref = env[names.index(reference[1])]["valueFrom"]["secretKeyRef"]
        assert secret_ref["key"] == key
        secrets.add(secret_ref["name"])
    assert len(secrets) == 1, f"user and password from different Secrets: {secrets}"
    return secrets.pop(), f"{url.host}:{url.port}/{url.database}"


def kafka_login(workload: Manifest, spec: Manifest) -> str | None:
    """The principal a workload logs in to Kafka as, checked against the Secret it mounts."""
    env = {entry["name"]: entry for entry in env_of(container(spec))}
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    if "SANWU_KAFKA_USERNAME" not in env:
        assert "kafka-user" not in volumes, workload["metadata"]["name"]
        return None
    principal: str = env["SANWU_KAFKA_USERNAME"]["value"]
    assert volumes["kafka-user"]["secret"]["secretName"] == principal
    return principal


def labels(workload: Manifest) -> dict[str, str]:
    pod_labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return pod_labels


# --- PostgreSQL ----------------------------------------------------------------------------


def test_the_cluster_makes_every_service_role_and_nothing_more_powerful(
    built: tuple[Manifest, ...],
) -> None:
    """Each role the migration grants rights to (shared/database_roles.py) is created by the
    operator, logs in with a password of its own and holds no attribute beyond login: not
    superuser, nor creating databases or roles, nor replication, nor bypassing row security,
    nor member of another role. The migrator owns the database; the superuser has no password."""
    spec = cluster(built)["spec"]
    roles = {role["name"]: role for role in spec["managed"]["roles"]}
    assert set(roles) == {role.name for role in database_roles.SERVICE_ROLES}
    for name, role in roles.items():
        assert role.get("ensure", "present") == "present", name
        assert role["login"] is True, name
        assert all(role.get(attribute, False) is False for attribute in ROLE_ATTRIBUTES), name
        assert role.get("inRoles", []) == [], name
        assert not role.get("disablePassword", False), name
    secrets = [role["passwordSecret"]["name"] for role in roles.values()]
    assert len(set(secrets)) == len(secrets)
    assert spec["bootstrap"]["initdb"]["owner"] == MIGRATOR_ROLE
    assert spec["enableSuperuserAccess"] is False


def test_each_workload_logs_in_to_postgresql_as_its_own_role(
    built: tuple[Manifest, ...],
) -> None:
    """Through the pooler, with the user and password of its role's Secret: the services each
    as theirs, the migration, rebuild, registry and keys workloads as the migrator (whose
    Secret CloudNativePG makes, `<cluster>-app`), no workload as the superuser."""
    pg = cluster(built)
    secret_of = {r["name"]: r["passwordSecret"]["name"] for r in pg["spec"]["managed"]["roles"]}
    secret_of[MIGRATOR_ROLE] = f"{pg['metadata']['name']}-app"
    role_of_secret = {secret: role for role, secret in secret_of.items()}
    logins = {}
    for workload, spec in pod_specs(built):
        name = workload["metadata"]["name"]
        login = database_login(container(spec))
        if login is not None:
            secret, where = login
            assert where == f"{POOLER}:5432/sanwu", name
            logins[name] = role_of_secret.get(secret, f"an unknown Secret {secret}")
        else:
            logins[name] = None
        is_client = labels(workload).get("sanwu.gov.cn/database-client") == "true"
        assert is_client == (login is not None), f"{name}: label and URL disagree"
    assert logins == {name: role for name, (role, _) in IDENTITIES.items()}


def test_the_migrator_runs_only_in_jobs_and_on_demand_never_in_a_service(
    built: tuple[Manifest, ...],
) -> None:
    for workload, spec in pod_specs(built):
        login = database_login(container(spec))
        phase = workload["metadata"]["labels"]["sanwu.gov.cn/phase"]
        if login is not None and login[0] == "sanwu-pg-app":
            assert phase in ("migrate", "on-demand"), workload["metadata"]["name"]
    migrate = named(built, "Job", "sanwu-migrate")
    assert database_login(container(migrate["spec"]["template"]["spec"])) is not None


def test_no_workload_can_reach_the_superuser(built: tuple[Manifest, ...]) -> None:
    """No Secret of the superuser is referenced, and no URL names `postgres`."""
    rendered = str([workload for workload, _ in pod_specs(built)])
    assert "sanwu-pg-superuser" not in rendered
    for _, spec in pod_specs(built):
        for entry in env_of(container(spec)):
            if entry["name"] == "SANWU_DATABASE_URL":
                assert "://postgres:" not in entry["value"]


def test_the_pooler_can_hold_every_roles_pool_within_postgresqls_connections(
    built: tuple[Manifest, ...],
) -> None:
    """PgBouncer pools per role; together they stay below what PostgreSQL accepts."""
    pooler = named(built, "Pooler", POOLER)["spec"]
    parameters = pooler["pgbouncer"]["parameters"]
    server_side = pooler["instances"] * int(parameters["max_db_connections"])
    limit = int(cluster(built)["spec"]["postgresql"]["parameters"]["max_connections"])
    assert server_side < limit
    assert "authQuery" not in pooler["pgbouncer"]  # the operator's own look-up, for any role


# --- Kafka ---------------------------------------------------------------------------------


def test_each_kafka_client_logs_in_as_its_own_principal(built: tuple[Manifest, ...]) -> None:
    """Its SANWU_KAFKA_USERNAME and the password file mounted from that KafkaUser's Secret;
    no principal shared through the settings every pod gets."""
    users = {user["metadata"]["name"] for user in of_kind(built, "KafkaUser")}
    principals = {}
    for workload, spec in pod_specs(built):
        name = workload["metadata"]["name"]
        principal = kafka_login(workload, spec)
        assert principal is None or principal in users, name
        is_client = labels(workload).get("sanwu.gov.cn/kafka-client") == "true"
        assert is_client == (principal is not None), f"{name}: label and principal disagree"
        principals[name] = principal
    assert principals == {name: principal for name, (_, principal) in IDENTITIES.items()}
    assert "SANWU_KAFKA_USERNAME" not in config_env()


def test_the_kafka_users_have_exactly_the_rights_of_the_table(
    built: tuple[Manifest, ...],
) -> None:
    """Every KafkaUser is a principal of shared/kafka_rights.py, authenticated by SCRAM, and
    its ACLs, operation by operation, are the table's for the deployment's topic prefix:
    nothing more (a wider pattern, another topic) and nothing less."""
    prefix = config_env()["SANWU_TOPIC_PREFIX"]
    expected = {
        (acl.principal, acl.resource_type, acl.pattern_type, acl.name, operation)
        for acl in kafka_rights.acls(prefix)
        for operation in acl.operations
    }
    granted = set()
    users = of_kind(built, "KafkaUser")
    assert {user["metadata"]["name"] for user in users} == set(kafka_rights.PRINCIPALS)
    for user in users:
        spec = user["spec"]
        assert spec["authentication"]["type"] == "scram-sha-512"
        assert spec["authorization"]["type"] == "simple"
        for acl in spec["authorization"]["acls"]:
            assert acl.get("type", "allow") == "allow" and acl.get("host", "*") == "*"
            resource = acl["resource"]
            pattern = PATTERN_TYPES[resource.get("patternType", "literal")]
            for operation in acl["operations"]:
                granted.add(
                    (
                        user["metadata"]["name"],
                        resource["type"].upper(),
                        pattern,
                        resource.get("name"),
                        OPERATIONS[operation],
                    )
                )
    assert granted == expected


def test_the_brokers_authorize_every_principal_and_trust_none_above_its_acls(
    built: tuple[Manifest, ...],
) -> None:
    kafka = named(built, "Kafka", "sanwu-kafka")["spec"]["kafka"]
    assert kafka["authorization"]["type"] == "simple"
    assert "superUsers" not in kafka["authorization"]
    assert all(
        listener["authentication"]["type"] == "scram-sha-512" for listener in kafka["listeners"]
    )


# --- The public ingress --------------------------------------------------------------------

# What a service answers for its operators, never for the public: Prometheus and the kubelet
# reach these inside the cluster. A path of the apps outside this list is public.
OPERATIONAL = (
    *("/metrics", "/healthz", "/readyz"),
    *("/docs", "/docs/assets/{name}", "/docs/oauth2-redirect", "/redoc", "/openapi.json"),
    # The topics' contract, like the API's: read inside the cluster or from `sanwu topics asyncapi`.
    "/asyncapi.json",
)


@pytest.fixture(scope="module")
def apps() -> dict[str, FastAPI]:
    """Each service's app as it serves (its routes; nothing started)."""
    return {
        "intake": create_intake_app(IntakeSettings(environment="test")),
        "evaluation": create_evaluation_app(EvaluationSettings(environment="test")),
        "reporting": create_reporting_app(ReportingSettings(environment="test")),
        "applications": create_applications_app(ApplicationsSettings(environment="test")),
        "console": create_console_app(ConsoleSettings(environment="test")),
        "audit": create_audit_app(AuditSettings(environment="test")),
        "cases": create_cases_app(CasesSettings(environment="test")),
        "webhooks": create_webhooks_app(WebhooksSettings(environment="test")),
    }


def served_paths(app: FastAPI) -> set[str]:
    return {route.path for route in app.routes if hasattr(route, "path")}


def concrete(path: str) -> str:
    """A request path for a route's path: each {parameter} as a value."""
    return re.sub(r"\{[^}]+\}", "x1", path)


def routed_to(ingress: Manifest, host: str, path: str) -> str | None:
    """The Service the ingress sends a request for `path` on `host` to, matching as Kubernetes
    defines it: an Exact path whole; a Prefix path element by element of the '/'-split path."""
    parts = [part for part in path.split("/") if part]
    best: tuple[int, str] | None = None
    for rule in ingress["spec"]["rules"]:
        if rule["host"] != host:
            continue
        for entry in rule["http"]["paths"]:
            service = entry["backend"]["service"]["name"]
            assert entry["pathType"] in ("Exact", "Prefix"), entry
            if entry["pathType"] == "Exact":
                if entry["path"] == path:
                    return service
                continue
            prefix = [part for part in entry["path"].split("/") if part]
            if parts[: len(prefix)] == prefix and (best is None or len(prefix) > best[0]):
                best = (len(prefix), service)
    return best[1] if best else None


def test_the_ingress_routes_every_public_path_and_no_operational_one(
    built: tuple[Manifest, ...], apps: dict[str, FastAPI]
) -> None:
    """Every route a public service's app serves, outside the operational endpoints, reaches
    that service on its host (a new console page without its path here would be a 404); no
    operational endpoint of any service is reachable on any host, evaluation on none at all."""
    ingress = named(built, "Ingress", "sanwu")
    host_of = {
        entry["backend"]["service"]["name"]: rule["host"]
        for rule in ingress["spec"]["rules"]
        for entry in rule["http"]["paths"]
    }
    public = {"console", "intake", "reporting", "applications", "audit", "cases", "webhooks"}
    assert set(host_of) == public
    assert len(set(host_of.values())) == len(host_of)
    for service, host in host_of.items():
        public = served_paths(apps[service]) - set(OPERATIONAL)
        assert public, service
        for path in public:
            assert routed_to(ingress, host, concrete(path)) == service, (service, path)
    operational = {concrete(path) for path in OPERATIONAL}
    for app in apps.values():
        operational |= {concrete(p) for p in served_paths(app) if p in OPERATIONAL}
    for host in host_of.values():
        for path in operational | {f"{path}/" for path in operational}:
            assert routed_to(ingress, host, path) is None, (host, path)


def test_prometheus_scrapes_every_service_inside_the_cluster(
    built: tuple[Manifest, ...],
) -> None:
    """Off the ingress, /metrics stays reachable where Prometheus looks: each service's pods
    say where to scrape, on the port they serve, and the monitoring namespace may reach it."""
    (policy,) = [
        p for p in of_kind(built, "NetworkPolicy") if p["metadata"]["name"] == "from-prometheus"
    ]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    selected = policy["spec"]["podSelector"]["matchLabels"].items()
    for name in ("intake", "evaluation", "reporting", "applications", "console", "audit"):
        kind = "StatefulSet" if name == "evaluation" else "Deployment"
        template = named(built, kind, name)["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        (port,) = container(template["spec"])["ports"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port["containerPort"])
        assert selected <= template["metadata"]["labels"].items(), name
        assert {"port": port["name"], "protocol": "TCP"} in rule["ports"]
