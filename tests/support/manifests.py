"""The deployment manifests as the cluster would get them: each Kustomize overlay rendered by
the real kustomize, and validators for what the renders hold (the Kubernetes schemas of
kubernetes-validate, the operators' CRD schemas vendored under deploy/crds, the compose
specification's schema)."""

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
CRDS = ROOT / "deploy" / "crds"
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
COMPOSE_SCHEMA = CRDS / "compose-spec-a08f8d5.json"
OVERLAYS = ("staging", "production")

# Built from the Go module proxy once per machine (a few minutes), then kept under .stack/.
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION = "v5.8.1"
KUSTOMIZE_HOME = ROOT / ".stack" / "tools" / f"kustomize-{KUSTOMIZE_VERSION}"
# The oldest Kubernetes the manifests promise to run on, and the newest the schemas know.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())

Manifest = dict[str, Any]
# The vendored CRDs are large: libyaml reads them in a fraction of the time.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def kustomize_command() -> list[str]:
    """`SANWU_KUSTOMIZE` when set; else the pinned kustomize, built with Go if missing; else
    the kustomize inside kubectl."""
    if explicit := os.environ.get("SANWU_KUSTOMIZE"):
        return [explicit]
    binary = KUSTOMIZE_HOME / "kustomize"
    if not binary.exists() and shutil.which("go"):
        subprocess.run(
            ["go", "install", f"{KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}"],
            env=os.environ | {"GOBIN": str(KUSTOMIZE_HOME), "GOTOOLCHAIN": "local"},
            check=True,
            capture_output=True,
            timeout=900,
        )
    if binary.exists():
        return [str(binary)]
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    raise RuntimeError(f"no kustomize: install Go (to build {KUSTOMIZE_MODULE}) or kubectl")


@cache
def render(directory: str) -> tuple[Manifest, ...]:
    """`kustomize build deploy/k8s/<directory>`: every object of the build."""
    built = subprocess.run(
        [*kustomize_command(), "build", str(K8S / directory)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return tuple(doc for doc in yaml.load_all(built.stdout, Loader=LOADER) if doc)


def kubernetes_problems(manifest: Manifest, version: str) -> str | None:
    """Why the object is invalid for that Kubernetes version (strict: unknown fields count)."""
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path)
        return f"{path}: {error.message}"
    return None


@dataclass(frozen=True)
class CustomResourceSchemas:
    """The openAPIV3Schema of every served version of the vendored CRDs, made strict the way
    `kubectl apply --validate=strict` is: a field the schema does not name is an error."""

    by_kind: dict[tuple[str, str], dict[str, Any]]

    @classmethod
    def vendored(cls) -> "CustomResourceSchemas":
        schemas = {}
        for path in sorted(CRDS.glob("*.yaml")):
            crd = yaml.load(path.read_text(), Loader=LOADER)
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for served in crd["spec"]["versions"]:
                if served.get("served"):
                    schema = strict(served["schema"]["openAPIV3Schema"])
                    schemas[(f"{group}/{served['name']}", kind)] = schema
        return cls(schemas)

    def knows(self, manifest: Manifest) -> bool:
        return (manifest["apiVersion"], manifest["kind"]) in self.by_kind

    def problems(self, manifest: Manifest) -> list[str]:
        schema = self.by_kind[(manifest["apiVersion"], manifest["kind"])]
        validator = jsonschema.Draft4Validator(schema)
        return [
            f"{'.'.join(str(p) for p in error.path)}: {error.message}"
            for error in validator.iter_errors(manifest)
        ]


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of the schema in which objects with named properties admit no others."""
    copy = dict(schema)
    if "properties" in copy:
        copy["properties"] = {name: strict(sub) for name, sub in copy["properties"].items()}
        if not copy.get("x-kubernetes-preserve-unknown-fields"):
            copy.setdefault("additionalProperties", False)
    for key in ("items", "additionalProperties"):
        if isinstance(copy.get(key), dict):
            copy[key] = strict(copy[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in copy:
            copy[key] = [strict(sub) for sub in copy[key]]
    return copy


def compose_problems(document: Manifest) -> list[str]:
    schema = yaml.safe_load(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(str(p) for p in error.path)}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def pod_specs(manifests: tuple[Manifest, ...]) -> Iterator[tuple[Manifest, Manifest]]:
    """(workload, its pod spec) for every Deployment, StatefulSet and Job."""
    for manifest in manifests:
        if manifest["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield manifest, manifest["spec"]["template"]["spec"]


def of_kind(manifests: tuple[Manifest, ...], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def named(manifests: tuple[Manifest, ...], kind: str, name: str) -> Manifest:
    (found,) = [m for m in of_kind(manifests, kind) if m["metadata"]["name"] == name]
    return found
