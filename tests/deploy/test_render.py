"""Every kustomization renders, and every object it renders is valid: built-in kinds against the pinned Kubernetes
versions' strict schemas (kubernetes-validate), custom resources against their CRDs' schemas in
deploy/kubernetes/schemas, both refusing a field the schema does not name."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import KUBERNETES, KUBERNETES_VERSIONS, KUSTOMIZATIONS, SCHEMAS, Rendered

CUSTOM_RESOURCES = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobject_v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_servicemonitor_v1.json",
}
"""Custom kinds the manifests may use -> their schema file. A kind in neither this nor Kubernetes fails."""


def _strict(node: Any) -> Any:
    """A CRD's structural schema as the API server's strict field validation applies it: an object listing its
    properties takes no other field, unless it preserves unknown fields."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    strict = {key: _strict(value) for key, value in node.items()}
    if strict.pop("x-kubernetes-int-or-string", False):
        strict.pop("type", None)
        strict["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if strict.pop("nullable", False) and "type" in strict:
        strict["type"] = [strict["type"], "null"]
    preserve = strict.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in strict and not preserve and "additionalProperties" not in strict:
        strict["additionalProperties"] = False
    return strict


@cache
def _custom_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / CUSTOM_RESOURCES[(api_version, kind)]).read_text())
    # The CRD leaves metadata to the API server: hold it to ObjectMeta's keys at least.
    schema = _strict(schema)
    schema["properties"]["metadata"] = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": {"type": "object"}},
        "required": ["name"],
        "additionalProperties": False,
    }
    return jsonschema.Draft7Validator(schema)


def validation_errors(obj: dict[str, Any]) -> list[str]:
    """Why ``obj`` would be refused: one line per error, none when it is valid."""
    key = (obj.get("apiVersion", ""), obj.get("kind", ""))
    where = f"{key[1]} {obj.get('metadata', {}).get('name')}"
    if key in CUSTOM_RESOURCES:
        return [
            f"{where}: {'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _custom_validator(*key).iter_errors(obj)
        ]
    errors = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{where} ({version}): {'.'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{where}: {exc.message} (a custom resource needs its schema in {SCHEMAS})")
    return errors


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_object_is_valid(rendered: dict[str, Rendered], name: str) -> None:
    objects = rendered[name].objects
    assert objects
    errors = [error for obj in objects for error in validation_errors(obj)]
    assert not errors, "\n".join(errors)


def test_the_validation_refuses_unknown_fields(rendered: dict[str, Rendered]) -> None:
    """The negative controls: a misspelt field of a built-in kind and of each custom resource is an error."""
    production = rendered["overlays/production"]
    deployment = copy.deepcopy(production.get("Deployment", "conduit-server-default"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpcc"] = {"port": 8001}
    assert validation_errors(deployment)
    deployment = copy.deepcopy(production.get("Deployment", "conduit-server-default"))
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "thirty"
    assert validation_errors(deployment)
    for kind in ("ScaledObject", "ServiceMonitor"):
        (resource,) = production.of_kind(kind)
        assert not validation_errors(resource)
        broken = copy.deepcopy(resource)
        broken["spec"]["minReplicas"] = 3
        assert validation_errors(broken), kind
    scaled = copy.deepcopy(production.of_kind("ScaledObject")[0])
    # KEDA reads every trigger setting as a string: an unquoted number is refused.
    scaled["spec"]["triggers"][0]["metadata"]["threshold"] = 8
    assert validation_errors(scaled)
    assert validation_errors({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})


def test_every_schema_file_is_used() -> None:
    on_disk = {p.name for p in SCHEMAS.glob("*.json")}
    assert on_disk == set(CUSTOM_RESOURCES.values())


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_kubectl_renders_the_same_objects(rendered: dict[str, Rendered], name: str) -> None:
    """``kubectl apply -k`` (kubectl's built-in kustomize, whichever version the machine has) renders the objects CI
    validated. The machines that run the tests have kubectl: its absence is a failure, never a skip."""
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is not on PATH: these machines have it (/usr/bin/kubectl)"
    command = [kubectl, "kustomize", str(KUBERNETES / name)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    theirs = [o for o in yaml.safe_load_all(done.stdout) if o]
    assert sorted(theirs, key=_identity) == sorted(rendered[name].objects, key=_identity)


def _identity(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]
