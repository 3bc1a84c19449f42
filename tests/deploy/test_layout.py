"""What the rendered manifests promise about running Conduit on several machines, read from the objects themselves:
grace periods that cover the server's drain, CPU that matches its workers, a metrics port per worker and a scrape of
each, probes on the services the processes report, pods spread over nodes, and add-ons (autoscaler, budgets, network
policies, collector) that point at objects that exist."""

from __future__ import annotations

import argparse
import re
from typing import Any

import pytest
import yaml

from control_plane.app import SERVICE_NAME as CONTROL_PLANE_SERVICE
from inference_server.app import SERVICE_NAME as INFERENCE_SERVICE
from inference_server.config import ModelConfig
from inference_server.settings import ServerSettings
from tests.deploy.conftest import Rendered, container_env, cpu_cores, expanded_args
from tests.deploy.test_commands import parse, settings_of

POOLED = ("base", "overlays/staging", "overlays/production")


def servers(rendered: Rendered) -> list[dict[str, Any]]:
    return [
        d
        for d in rendered.of_kind("Deployment")
        if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == "inference-server"
    ]


def server_settings(
    deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> tuple[ServerSettings, dict[str, str]]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = container_env(container)
    args: argparse.Namespace = parse(expanded_args(container), monkeypatch)
    with monkeypatch.context() as scoped:
        settings = settings_of(args, env, scoped)
    assert isinstance(settings, ServerSettings)
    return settings, env


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels and matchExpressions with In) selects ``labels``."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


@pytest.mark.parametrize("name", POOLED)
def test_servers_get_their_drain_and_their_cores(
    rendered: dict[str, Rendered], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pools = servers(rendered[name])
    assert pools
    for deployment in pools:
        settings, _ = server_settings(deployment, monkeypatch)
        pod = deployment["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] >= settings.drain_grace + settings.drain_timeout
        # One core per worker and onnxruntime intra-op thread (a model's default configuration).
        (container,) = pod["containers"]
        requests = container["resources"]["requests"]
        assert cpu_cores(requests["cpu"]) == settings.workers * max(1, ModelConfig().intra_op_threads)
        assert "cpu" not in container["resources"].get("limits", {}), "a CPU limit throttles the tail latency"
        # Listening where the probes, the ports and the Service look.
        assert settings.host == "0.0.0.0"
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        metrics = {f"metrics-{i}": settings.metrics_port + i for i in range(settings.workers)}
        assert ports == {"grpc": settings.grpc_port, **metrics}
        assert container["readinessProbe"]["grpc"] == {"port": settings.grpc_port, "service": INFERENCE_SERVICE}
        for probe in ("livenessProbe", "startupProbe"):
            assert container[probe]["grpc"]["port"] == settings.grpc_port
        # The server registers the address callers reach it at.
        assert settings.advertise == f"10.1.2.3:{settings.grpc_port}"
        assert settings.pool == deployment["metadata"]["labels"]["conduit.dev/pool"]
        _headless_service(rendered[name], deployment, ports)
        _spread(deployment)


def _headless_service(rendered: Rendered, deployment: dict[str, Any], ports: dict[str, int]) -> None:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (service,) = [s for s in rendered.of_kind("Service") if selects({"matchLabels": s["spec"]["selector"]}, labels)]
    assert service["spec"]["clusterIP"] == "None", "client-side balancing needs every pod's address in DNS"
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == ports
    assert all(p["targetPort"] == p["name"] for p in service["spec"]["ports"])


def _spread(deployment: dict[str, Any]) -> None:
    template = deployment["spec"]["template"]
    constraints = template["spec"]["topologySpreadConstraints"]
    by_key = {c["topologyKey"]: c for c in constraints}
    assert by_key["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert "topology.kubernetes.io/zone" in by_key
    for constraint in constraints:
        assert selects(constraint["labelSelector"], template["metadata"]["labels"])


@pytest.mark.parametrize("name", POOLED)
def test_the_control_plane_is_replicated_and_probed(rendered: dict[str, Rendered], name: str) -> None:
    deployment = rendered[name].get("Deployment", "conduit-control-plane")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port = container["ports"][0]["containerPort"]
    assert container["readinessProbe"]["grpc"] == {"port": port, "service": CONTROL_PLANE_SERVICE}
    assert container["livenessProbe"]["grpc"]["port"] == port
    _spread(deployment)
    service = rendered[name].get("Service", "conduit-control-plane")
    assert service["spec"]["ports"][0]["port"] == port


def test_the_autoscaler_owns_the_pool_size(rendered: dict[str, Rendered]) -> None:
    production = rendered["overlays/production"]
    (scaled,) = production.of_kind("ScaledObject")
    target = production.get("Deployment", scaled["spec"]["scaleTargetRef"]["name"])
    assert "replicas" not in target["spec"], "every apply would reset the autoscaler's choice"
    assert scaled["spec"]["minReplicaCount"] >= 2
    for trigger in scaled["spec"]["triggers"]:
        assert trigger["type"] == "prometheus"
        # The queries name the namespace and Service the overlay puts the pool in.
        query = trigger["metadata"]["query"]
        assert f'namespace="{target["metadata"]["namespace"]}"' in query
        assert f'service="{target["metadata"]["name"]}"' in query


def test_disruption_budgets_cover_replicated_workloads(rendered: dict[str, Rendered]) -> None:
    production = rendered["overlays/production"]
    budgets = production.of_kind("PodDisruptionBudget")
    for deployment in production.of_kind("Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets if selects(b["spec"]["selector"], labels)]
        single = deployment["spec"].get("replicas", 2) == 1
        assert len(covering) == (0 if single else 1), deployment["metadata"]["name"]


def test_network_policies_open_exactly_the_listening_ports(rendered: dict[str, Rendered]) -> None:
    """Every pod is under the default deny, and each port a policy lets in is one its pods listen on."""
    production = rendered["overlays/production"]
    policies = production.of_kind("NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]]
    assert deny and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    for deployment in production.of_kind("Deployment"):
        template = deployment["spec"]["template"]
        listening = {p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
        own = [
            p
            for p in policies
            if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], template["metadata"]["labels"])
        ]
        assert own, f"{deployment['metadata']['name']}: no policy lets anything in"
        opened = set()
        for policy in own:
            for rule in policy["spec"].get("ingress", []):
                for port in rule["ports"]:
                    opened.update(range(port["port"], port.get("endPort", port["port"]) + 1))
        # The health port of the collector is the kubelet's, which policies never stop.
        assert opened <= listening, deployment["metadata"]["name"]
        assert opened, deployment["metadata"]["name"]


def test_every_worker_is_scraped(rendered: dict[str, Rendered]) -> None:
    production = rendered["overlays/production"]
    (monitor,) = production.of_kind("ServiceMonitor")
    scraped = {e["port"] for e in monitor["spec"]["endpoints"]}
    services = [
        s for s in production.of_kind("Service") if selects(monitor["spec"]["selector"], s["metadata"]["labels"])
    ]
    assert services
    for service in services:
        metrics = {p["name"] for p in service["spec"]["ports"] if p["name"].startswith("metrics-")}
        assert metrics and metrics <= scraped, service["metadata"]["name"]


_ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def test_the_collector_config_is_whole(rendered: dict[str, Rendered]) -> None:
    """Every component a pipeline names is configured, every variable the configuration reads is set, metrics go
    to the control plane's receiver and the servers push to the collector's receiver."""
    production = rendered["overlays/production"]
    collector = production.get("Deployment", "conduit-otel-collector")
    pod = collector["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (volume,) = pod["volumes"]
    config_map = production.get("ConfigMap", volume["configMap"]["name"])
    text = config_map["data"]["config.yaml"]
    config = yaml.safe_load(text)
    for pipeline in config["service"]["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config[kind], component
    for extension in config["service"].get("extensions", []):
        assert extension in config["extensions"]
    assert set(_ENV_REFERENCE.findall(text)) <= set(container_env(container))
    assert f"--config={container['volumeMounts'][0]['mountPath']}/config.yaml" in container["args"]
    metrics_exporters = config["service"]["pipelines"]["metrics"]["exporters"]
    control_plane = production.get("Service", "conduit-control-plane")
    assert [config["exporters"][e]["endpoint"] for e in metrics_exporters] == [
        f"{control_plane['metadata']['name']}:{control_plane['spec']['ports'][0]['port']}"
    ]
    receiver_port = int(config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].rsplit(":", 1)[1])
    service = production.get("Service", "conduit-otel-collector")
    for deployment in servers(production):
        (server,) = deployment["spec"]["template"]["spec"]["containers"]
        endpoint = container_env(server)["CONDUIT_OTLP_ENDPOINT"]
        assert endpoint == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    assert service["spec"]["ports"][0]["port"] == receiver_port
