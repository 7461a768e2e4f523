"""The Kubernetes manifests, rendered by kustomize for the base and each overlay, as a cluster
would get them: valid for Kubernetes and for the operators' custom resources, applied in
phases by label, and agreeing with what the code expects (settings, topics, ports, probes,
the campaign file)."""

import copy
import os
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from services.applications.config import ApplicationsSettings
from services.audit.config import LOCAL_ONLY_SIGNING_KEY, AuditSettings
from services.cases.config import CasesSettings
from services.console.config import ConsoleSettings
from services.evaluation.config import EvaluationSettings
from services.intake.config import IntakeSettings
from services.reporting.config import ReportingSettings
from services.webhooks.config import WebhooksSettings
from shared import campaign, kafka
from shared.config import Settings
from tests.support.manifests import (
    K8S,
    KUBERNETES_VERSIONS,
    OVERLAYS,
    ROOT,
    CustomResourceSchemas,
    Manifest,
    kubernetes_problems,
    named,
    of_kind,
    pod_specs,
    render,
)

# The first build may compile kustomize (tests/support/manifests.py).
pytestmark = pytest.mark.timeout(900)

BUILDS = ("base", *(f"overlays/{overlay}" for overlay in OVERLAYS))
PHASES = {"platform", "migrate", "services", "on-demand"}
SERVICES = {"console": 8000, "intake": 8001, "evaluation": 8002, "reporting": 8003}
SERVICES |= {"applications": 8004, "cases": 8005, "audit": 8006, "webhooks": 8007}
SETTINGS_CLASSES = (
    IntakeSettings,
    EvaluationSettings,
    ReportingSettings,
    ApplicationsSettings,
    ConsoleSettings,
    AuditSettings,
    CasesSettings,
    WebhooksSettings,
)


def config_env() -> dict[str, str]:
    lines = (K8S / "base" / "platform" / "config.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def container(pod_spec: Manifest) -> Manifest:
    (only,) = pod_spec["containers"]
    assert only["name"] == "sanwu"
    return only


@pytest.fixture(scope="module")
def custom_resources() -> CustomResourceSchemas:
    return CustomResourceSchemas.vendored()


@pytest.mark.parametrize("build", BUILDS)
def test_every_object_is_valid_for_kubernetes_or_its_operator(
    build: str, custom_resources: CustomResourceSchemas
) -> None:
    problems = []
    for manifest in render(build):
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        if custom_resources.knows(manifest):
            problems += [f"{name}: {p}" for p in custom_resources.problems(manifest)]
            continue
        for version in KUBERNETES_VERSIONS:
            if problem := kubernetes_problems(manifest, version):
                problems.append(f"{name} (Kubernetes {version}): {problem}")
    assert problems == []


def test_the_validators_refuse_an_unknown_field_and_a_wrong_type(
    custom_resources: CustomResourceSchemas,
) -> None:
    """Strict, as `kubectl apply --validate=strict` is: a misspelt field is an error, not
    silently dropped."""
    built = render("overlays/production")
    kafka_cluster = copy.deepcopy(named(built, "Kafka", "sanwu-kafka"))
    kafka_cluster["spec"]["kafka"]["listenrs"] = []
    topic = copy.deepcopy(named(built, "KafkaTopic", "sanwu-unit-status"))
    topic["spec"]["partitions"] = "six"
    pooler = copy.deepcopy(named(built, "Pooler", "sanwu-pg-pooler-rw"))
    pooler["spec"]["pgbouncer"]["poolMode"] = "statement"
    intake = copy.deepcopy(named(built, "Deployment", "intake"))
    container(intake["spec"]["template"]["spec"])["readinessprobe"] = {}

    assert "'listenrs' was unexpected" in custom_resources.problems(kafka_cluster)[0]
    assert "'six' is not of type 'integer'" in custom_resources.problems(topic)[0]
    assert "'statement' is not one of" in custom_resources.problems(pooler)[0]
    assert "'readinessprobe' was unexpected" in str(kubernetes_problems(intake, "1.30"))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_belongs_to_a_phase_and_each_job_is_selectable(overlay: str) -> None:
    """docs/operations.md applies an overlay step by step with
    `-l sanwu.gov.cn/phase=...`: an object without a phase would never be applied; the
    on-demand Jobs run one by one by their sanwu.gov.cn/job."""
    built = render(f"overlays/{overlay}")
    for manifest in built:
        labels = manifest["metadata"].get("labels", {})
        assert labels.get("sanwu.gov.cn/phase") in PHASES, manifest["metadata"]["name"]
        assert labels.get("app.kubernetes.io/part-of") == "sanwu"
    jobs = {job["metadata"]["labels"]["sanwu.gov.cn/job"]: job for job in of_kind(built, "Job")}
    assert set(jobs) == {
        "migrate",
        "topics",
        "units-load",
        "evaluation-rebuild",
        "reporting-rebuild",
        "applications-rebuild",
    }
    commands = {"migrate": ["sanwu", "db", "migrate"], "topics": ["sanwu", "topics", "ensure"]}
    for name, command in commands.items():
        assert jobs[name]["metadata"]["labels"]["sanwu.gov.cn/phase"] == "migrate"
        assert container(jobs[name]["spec"]["template"]["spec"])["command"] == command
    keys = named(built, "Deployment", "sanwu-keys")
    assert keys["metadata"]["labels"]["sanwu.gov.cn/phase"] == "on-demand"
    assert keys["metadata"]["labels"]["sanwu.gov.cn/job"] == "keys"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_runs_the_release_image(overlay: str) -> None:
    images = {container(spec)["image"] for _, spec in pod_specs(render(f"overlays/{overlay}"))}
    assert len(images) == 1
    (image,) = images
    registry, _, rest = image.partition("/")
    repository, _, tag = rest.rpartition(":")
    assert "." in registry and repository and tag not in ("", "latest"), image


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_listens_where_its_probes_and_service_look(overlay: str) -> None:
    """Startup and liveness ask /healthz (answered once the start-up, the wait for the
    migration included, is done); readiness asks /readyz; the uvicorn port is the
    container's and the Service's."""
    built = render(f"overlays/{overlay}")
    for name, port in SERVICES.items():
        kind = "StatefulSet" if name == "evaluation" else "Deployment"
        sanwu = container(named(built, kind, name)["spec"]["template"]["spec"])
        module = f"services.{name}.main:create_app"
        assert sanwu["command"][:3] == ["uvicorn", module, "--factory"]
        assert (ROOT / "services" / name / "main.py").exists()
        assert f"--port={port}" in sanwu["command"]
        assert sanwu["ports"] == [{"name": "http", "containerPort": port}]
        assert sanwu["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert sanwu["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert sanwu["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert set(sanwu["resources"]) == {"requests", "limits"}
        service = named(built, "Service", name)
        assert service["spec"]["ports"][0]["port"] == port
        assert service["spec"]["selector"] == {"app.kubernetes.io/name": name}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaled_services_leave_the_count_to_their_autoscaler(overlay: str) -> None:
    built = render(f"overlays/{overlay}")
    scaled = {
        hpa["spec"]["scaleTargetRef"]["name"] for hpa in of_kind(built, "HorizontalPodAutoscaler")
    }
    assert scaled == {"intake", "reporting", "console"}
    for name in scaled:
        assert "replicas" not in named(built, "Deployment", name)["spec"]
    budgets = {
        pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for pdb in of_kind(built, "PodDisruptionBudget")
    }
    assert budgets == set(SERVICES)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_gets_its_settings_secrets_and_campaign_file(overlay: str) -> None:
    built = render(f"overlays/{overlay}")
    configs = {cm["metadata"]["name"]: cm for cm in of_kind(built, "ConfigMap")}
    env = config_env()
    campaign_file = Path(env["SANWU_CAMPAIGN_FILE"])
    for workload, spec in pod_specs(built):
        sanwu = container(spec)
        sources = {next(iter(ref.values()))["name"] for ref in sanwu["envFrom"]}
        assert "sanwu-secrets" in sources, workload["metadata"]["name"]
        assert any(
            env.items() <= configs[name]["data"].items() for name in sources if name in configs
        )
        mounts = {m["name"]: m["mountPath"] for m in sanwu["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert mounts["campaign"] == str(campaign_file.parent)
        campaign_map = configs[volumes["campaign"]["configMap"]["name"]]
        assert campaign_file.name in campaign_map["data"]


def settings_class(sanwu: Manifest) -> type[Settings]:
    """The settings its process reads: a service's own for uvicorn and for that service's
    commands (`sanwu evaluation rebuild`), the shared ones for the others."""
    command = " ".join(sanwu["command"])
    named_service = re.search(r"services\.(\w+)\.main|^sanwu (\w+) ", command)
    service = (
        next((group for group in named_service.groups() if group), "") if named_service else ""
    )
    by_service = {kind.__module__.split(".")[1]: kind for kind in SETTINGS_CLASSES}
    return by_service.get(service, Settings)


# What a mounted Secret's files hold where a placeholder would not do: the audit log's key as
# `openssl genpkey -algorithm ed25519` writes it (the manifest's comment).
SECRET_FILES = {
    "sanwu-audit-signing-key": Ed25519PrivateKey.generate()
    .private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    .decode()
}


def pod_environment(
    sanwu: Manifest, spec: Manifest, configs: dict[str, Manifest], root: Path
) -> dict[str, str]:
    """The process's environment as Kubernetes would give it, with every volume the pod
    mounts made under `root` (Secrets' files holding placeholders, the build's ConfigMaps'
    their data) and every path into a mount moved there."""
    environment = {"SANWU_PETITIONER_HASH_SECRET": "0" * 64}  # from the Secret sanwu-secrets
    for source in sanwu["envFrom"]:
        if "configMapRef" in source:
            environment |= configs[source["configMapRef"]["name"]]["data"]
    for entry in sanwu.get("env", []):
        if "value" in entry:
            value = re.sub(r"\$\((\w+)\)", lambda m: environment[m[1]], entry["value"])
        elif "secretKeyRef" in entry["valueFrom"]:
            reference = entry["valueFrom"]["secretKeyRef"]
            value = f"{reference['name']}-{reference['key']}"
        else:
            value = "pod-name"
        environment[entry["name"]] = value
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    moved = {}
    for mount in sanwu["volumeMounts"]:
        directory = root / mount["name"]
        directory.mkdir(parents=True)
        volume = volumes[mount["name"]]
        if "secret" in volume:
            content = SECRET_FILES.get(volume["secret"]["secretName"], "placeholder\n")
            for item in volume["secret"]["items"]:
                (directory / item["path"]).write_text(content)
        elif "configMap" in volume:
            # sanwu-registry is made by the operator, outside the build.
            made = configs.get(volume["configMap"]["name"], {"data": {}})
            for name, text in made["data"].items():
                (directory / name).write_text(text)
        moved[mount["mountPath"]] = str(directory)
    for name, value in environment.items():
        for mount_path, directory in moved.items():
            if value.startswith(mount_path + "/"):
                environment[name] = directory + value[len(mount_path) :]
    return environment


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workloads_settings_are_valid_where_it_runs(
    overlay: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each process would start: its settings, from its pod's config, Secrets and mounted
    files, pass validation (a setting naming a file the pod does not mount stops it), and its
    campaign file loads."""
    built = render(f"overlays/{overlay}")
    configs = {cm["metadata"]["name"]: cm for cm in of_kind(built, "ConfigMap")}
    for workload, spec in pod_specs(built):
        name = workload["metadata"]["name"]
        sanwu = container(spec)
        environment = pod_environment(sanwu, spec, configs, tmp_path / name)
        for variable in [v for v in os.environ if v.startswith("SANWU_")]:
            monkeypatch.delenv(variable)
        for variable, value in environment.items():
            monkeypatch.setenv(variable, value)
        try:
            settings = settings_class(sanwu)()
        except ValidationError as error:
            pytest.fail(f"{name}: {error}")
        campaign.load(settings.campaign_file)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlays_campaign_file_is_one_the_services_accept(overlay: str) -> None:
    campaign.load(K8S / "overlays" / overlay / "campaign.yaml")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_in_the_config_map_is_one_a_service_reads(overlay: str) -> None:
    """A misspelt SANWU_ name would be ignored silently (settings ignore unknown names)."""
    known = {f"SANWU_{field.upper()}" for kind in SETTINGS_CLASSES for field in kind.model_fields}
    (config,) = [
        cm["data"]
        for cm in of_kind(render(f"overlays/{overlay}"), "ConfigMap")
        if cm["metadata"]["name"].startswith("sanwu-config-")
    ]
    assert {name for name in config if name.startswith("SANWU_")} - known == set()


def test_only_kafka_clients_get_the_kafka_credentials_and_reach_the_brokers() -> None:
    """Strimzi admits to the listener exactly the pods labelled as Kafka clients, and those
    are the pods given the CA and the SCRAM password; the console is not one of them."""
    built = render("overlays/production")
    listener = named(built, "Kafka", "sanwu-kafka")["spec"]["kafka"]["listeners"][0]
    (peer,) = listener["networkPolicyPeers"]
    assert listener["tls"] and listener["authentication"]["type"] == "scram-sha-512"
    for workload, spec in pod_specs(built):
        labels = spec_labels(workload)
        is_client = all(labels.get(k) == v for k, v in peer["podSelector"]["matchLabels"].items())
        mounts = {m["name"] for m in container(spec)["volumeMounts"]}
        assert is_client == ({"kafka-ca", "kafka-user"} <= mounts), workload["metadata"]["name"]
    assert "sanwu.gov.cn/kafka-client" not in spec_labels(named(built, "Deployment", "console"))


def spec_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def test_the_topics_are_those_the_services_create() -> None:
    """Every topic of shared/kafka.py topic_specs, under the ConfigMap's settings, is a
    KafkaTopic with the same partitions, replication and configs (min.insync.replicas
    included), so the topic operator makes exactly what a service would."""
    env = config_env()
    topic_settings: tuple[str, ...] = ("TOPIC_PREFIX", "EVENT_PARTITIONS", "STATUS_PARTITIONS")
    topic_settings += ("KAFKA_REPLICATION_FACTOR", "KAFKA_MIN_INSYNC_REPLICAS")
    values: dict[str, Any] = {name.lower(): env[f"SANWU_{name}"] for name in topic_settings}
    settings = Settings(**values, petitioner_hash_secret="only-to-build-settings-for-topic-specs")
    built = render("overlays/production")
    topics = {t["spec"]["topicName"]: t["spec"] for t in of_kind(built, "KafkaTopic")}
    specs = {spec.name: spec for spec in kafka.topic_specs(settings)}
    assert set(topics) == set(specs)
    for name, spec in specs.items():
        assert topics[name]["partitions"] == spec.num_partitions, name
        assert topics[name]["replicas"] == spec.replication_factor == 3, name
        configs = {key: str(value) for key, value in topics[name]["config"].items()}
        assert configs == spec.topic_configs, name
        assert configs["min.insync.replicas"] == "2"


def test_the_pooler_keeps_sessions_for_listen_notify() -> None:
    """Every database client connects through it (tests/deploy/test_least_privilege.py)."""
    built = render("overlays/production")
    pooler = named(built, "Pooler", "sanwu-pg-pooler-rw")
    assert pooler["spec"]["pgbouncer"]["poolMode"] == "session"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_audit_log_signs_with_a_key_mounted_from_a_secret_never_a_literal(
    overlay: str,
) -> None:
    """SANWU_AUDIT_SIGNING_KEY_FILE names a file of a Secret the pod mounts, readable by its
    group (the pod's fsGroup) and no one else; the key itself is in no setting, no ConfigMap
    and no object of the build (the operator makes the Secret), so it is never in the tree."""
    built = render(f"overlays/{overlay}")
    audit = named(built, "Deployment", "audit")["spec"]["template"]["spec"]
    sanwu = container(audit)
    env = {entry["name"]: entry for entry in sanwu["env"]}
    assert "SANWU_AUDIT_SIGNING_KEY" not in env
    key_file = Path(env["SANWU_AUDIT_SIGNING_KEY_FILE"]["value"])
    (mount,) = [m for m in sanwu["volumeMounts"] if m["mountPath"] == str(key_file.parent)]
    assert mount["readOnly"] is True
    (volume,) = [v for v in audit["volumes"] if v["name"] == mount["name"]]
    secret = volume["secret"]
    assert [item["path"] for item in secret["items"]] == [key_file.name]
    assert secret["defaultMode"] & 0o007 == 0, "the key is readable by every user"
    assert audit["securityContext"]["fsGroup"] == audit["securityContext"]["runAsGroup"]
    for config in of_kind(built, "ConfigMap"):
        assert not {"SANWU_AUDIT_SIGNING_KEY", "SANWU_AUDIT_SIGNING_KEY_FILE"} & set(
            config.get("data", {})
        ), config["metadata"]["name"]
    assert secret["secretName"] not in {s["metadata"]["name"] for s in of_kind(built, "Secret")}
    assert LOCAL_ONLY_SIGNING_KEY not in str(built)


def test_each_overlay_names_its_own_audit_log() -> None:
    """Every checkpoint carries SANWU_AUDIT_ORIGIN: each deployment sets one of its own, on
    its own public host, never the local default, so a staging checkpoint can not pass for
    production's."""
    origins = {}
    for overlay in OVERLAYS:
        built = render(f"overlays/{overlay}")
        (config,) = [
            cm["data"]
            for cm in of_kind(built, "ConfigMap")
            if cm["metadata"]["name"].startswith("sanwu-config-")
        ]
        origin = config["SANWU_AUDIT_ORIGIN"]
        audit_host = next(
            rule["host"]
            for rule in named(built, "Ingress", "sanwu")["spec"]["rules"]
            if rule["http"]["paths"][0]["backend"]["service"]["name"] == "audit"
        )
        assert origin.split("/")[0] in audit_host, (overlay, origin, audit_host)
        assert origin != AuditSettings.model_fields["audit_origin"].default
        origins[overlay] = origin
    assert len(set(origins.values())) == len(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_console_reaches_every_service_it_calls(overlay: str) -> None:
    """Each of the console's service URLs names a Service of the build on its port, and the
    network policy from-console lets the console's pods in there."""
    built = render(f"overlays/{overlay}")
    (config,) = [
        cm["data"]
        for cm in of_kind(built, "ConfigMap")
        if cm["metadata"]["name"].startswith("sanwu-config-")
    ]
    fields = {f"SANWU_{name.upper()}": name for name in ConsoleSettings.model_fields}
    urls = ConsoleSettings(
        **{fields[k]: v for k, v in config.items() if k in fields and k.endswith("_URL")},
        petitioner_hash_secret="only-to-read-the-console-settings",
    ).service_urls
    (policy,) = [
        p for p in of_kind(built, "NetworkPolicy") if p["metadata"]["name"] == "from-console"
    ]
    (selected,) = policy["spec"]["podSelector"]["matchExpressions"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "console"}}}]
    for name, url in urls.items():
        match = re.fullmatch(r"http://([\w-]+):(\d+)", url)
        assert match is not None, (name, url)
        service = named(built, "Service", match[1])
        assert service["spec"]["ports"][0]["port"] == int(match[2]), name
        target = service["spec"]["selector"]["app.kubernetes.io/name"]
        assert selected["operator"] == "In" and target in selected["values"], name
