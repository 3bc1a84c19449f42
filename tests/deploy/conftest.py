"""Fixtures of the deployment tests: every kustomization under deploy/kubernetes rendered by the pinned kustomize
(clients/toolchains.sh installs it), and what the rendered objects say, read once per session."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.inference_server.conftest import credit  # noqa: F401  # a fixture: a model trained with its profile

KUBERNETES = ROOT / "deploy" / "kubernetes"
SCHEMAS = KUBERNETES / "schemas"
KUSTOMIZE = ROOT / ".cache" / "bin" / "kustomize"

KUSTOMIZATIONS = (
    "base",
    "overlays/staging",
    "overlays/production",
    "examples/tuning/search",
    "examples/tuning/register",
)
"""Every kustomization that renders on its own (examples/tuning/spec is a component of the last two)."""

KUBERNETES_VERSIONS = ("1.33", "1.37")
"""The Kubernetes versions every built-in kind is validated against: the oldest the manifests are for (native gRPC
probes came in 1.27, matchLabelKeys in topology spread in 1.27, backoffLimitPerIndex of indexed Jobs in 1.33) and the
newest whose schemas the pinned kubernetes-validate ships."""


CONDUIT_IMAGE = "registry.example.com/conduit/conduit"
"""The overlays' name of the one image every Conduit container runs (the base calls it ``conduit``)."""


@dataclass(frozen=True)
class Rendered:
    """The objects one kustomization renders."""

    name: str
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert found, f"{self.name}: no {kind} {name}"
        return found[0]

    def workloads(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(workload, pod spec) of every Deployment and Job."""
        for o in self.objects:
            if o["kind"] in ("Deployment", "Job"):
                yield o, o["spec"]["template"]["spec"]


def render(directory: Path) -> str:
    """``kustomize build`` of ``directory``, with the pinned kustomize."""
    if not KUSTOMIZE.is_file():
        pytest.fail(f"{KUSTOMIZE} is missing: run `make toolchains` (clients/toolchains.sh installs the pinned one)")
    command = [str(KUSTOMIZE), "build", str(directory)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"kustomize build {directory}:\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def rendered() -> dict[str, Rendered]:
    """Every kustomization of ``KUSTOMIZATIONS``, rendered."""
    return {
        name: Rendered(name, [o for o in yaml.safe_load_all(render(KUBERNETES / name)) if o]) for name in KUSTOMIZATIONS
    }


_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
"""Kubernetes' dependent variable in a container's command and args: ``$(NAME)`` of one of the container's env."""

FIELD_STAND_INS = {"status.podIP": "10.1.2.3", "metadata.name": "conduit-pod-0", "metadata.namespace": "conduit"}
"""What a pod's downward-API fields stand for when its commands are parsed here."""


def container_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the process would see it: literal values, the downward API's fields by a
    stand-in, a Secret's key as ``secret:NAME/KEY``."""
    env: dict[str, str] = {}
    for var in container.get("env", []):
        source = var.get("valueFrom")
        if source is None:
            env[var["name"]] = var.get("value", "")
        elif "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            assert path in FIELD_STAND_INS, f"{container['name']}: no stand-in for the field {path}"
            env[var["name"]] = FIELD_STAND_INS[path]
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[var["name"]] = f"secret:{ref['name']}/{ref['key']}"
        else:
            raise AssertionError(f"{container['name']}: env {var['name']} from an unexpected source {source}")
    assert not container.get("envFrom"), f"{container['name']}: envFrom hides which variables it sets"
    return env


def expanded_args(container: dict[str, Any]) -> list[str]:
    """The container's args with ``$(NAME)`` replaced as Kubernetes does; an undeclared name fails (Kubernetes would
    pass it on verbatim)."""
    env = container_env(container)

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in env, f"{container['name']}: $({name}) names no variable of the container"
        return env[name]

    return [_REFERENCE.sub(value, arg) for arg in container.get("args", [])]


def cpu_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity (``2``, ``500m``) in cores."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)
