"""Every Conduit container's command line, parsed by the real ``conduit`` parser (its handlers replaced, so nothing
runs) and turned into the real settings with the container's environment: a flag, a value or a ``CONDUIT_*`` variable
the command does not know fails here, not in a crash-looping pod."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import clients._cli_control
import clients.cli
from clients._cli_train import STUDY_DB_ENV
from control_plane.alerting import AlertingSettings
from control_plane.settings import ControlPlaneSettings
from dashboard.settings import DashboardSettings
from inference_server.settings import ServerSettings
from tests.deploy.conftest import CONDUIT_IMAGE, KUSTOMIZATIONS, Rendered, container_env, expanded_args
from trainers import load_spec

CLIENT_ENV = {"CONDUIT_CONTROL_PLANE", "CONDUIT_TOKEN", "CONDUIT_CONTROL_PLANE_CA", STUDY_DB_ENV}
"""What commands that call the control plane (``conduit train``, …) read besides their flags."""


def parse(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    """``argv`` through ``conduit``'s own parser; the handler that would run it records its arguments instead."""
    parsed: list[argparse.Namespace] = []

    def record(args: argparse.Namespace) -> int:
        parsed.append(args)
        return 0

    for handler in ("_serve", "_control_plane", "_dashboard"):
        monkeypatch.setattr(clients.cli, handler, record)
    monkeypatch.setattr(clients._cli_control, "run_control_command", record)
    try:
        assert clients.cli.main(argv) == 0
    except SystemExit as exc:  # argparse's refusal, already printed
        pytest.fail(f"conduit {' '.join(argv)}: refused by the parser (exit {exc.code})")
    (args,) = parsed
    return args


def env_names(settings: type[BaseModel], prefix: str) -> set[str]:
    """The variables a settings class reads: a field's alias, else the prefix and its name."""
    names = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else f"{prefix}{name.upper()}")
    return names


def settings_of(args: argparse.Namespace, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> BaseModel | None:
    """The settings the command would run with (``None`` for commands without a settings class), after checking
    that every ``CONDUIT_*`` variable set is one the command reads."""
    for name in [n for n in os.environ if n.startswith("CONDUIT_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "action")}
    conduit_env = {name for name in env if name.startswith("CONDUIT_")}
    if args.command == "serve":
        assert conduit_env <= env_names(ServerSettings, "CONDUIT_")
        return ServerSettings(**overrides)
    if args.command == "control-plane":
        known = env_names(ControlPlaneSettings, "CONDUIT_CP_") | env_names(AlertingSettings, "CONDUIT_ALERTS_")
        assert conduit_env <= known
        AlertingSettings()
        return ControlPlaneSettings(**overrides)
    if args.command == "dashboard":
        assert conduit_env <= env_names(DashboardSettings, "CONDUIT_DASHBOARD_")
        return DashboardSettings(**overrides)
    assert conduit_env <= CLIENT_ENV
    return None


def conduit_containers(rendered: Rendered) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(workload name, pod spec, container) of every container running the Conduit image."""
    found = []
    for workload, pod in rendered.workloads():
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            image = container["image"]
            if image.split(":")[0] in ("conduit", CONDUIT_IMAGE):
                found.append((workload["metadata"]["name"], pod, container))
    return found


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_conduit_command_parses(
    rendered: dict[str, Rendered], name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    containers = conduit_containers(rendered[name])
    assert containers
    for workload, pod, container in containers:
        assert container["command"] == ["conduit"], workload
        args = parse(expanded_args(container), monkeypatch)
        env = container_env(container)
        with monkeypatch.context() as scoped:
            settings_of(args, env, scoped)
        if args.command == "train":
            # The spec it names is the one mounted from the ConfigMap, and it is a valid training spec.
            spec = _mounted_file(rendered[name], pod, container, Path(args.spec), tmp_path)
            assert load_spec(spec).search is not None, "a tuning example without a [search]"


def test_the_parser_refuses_what_it_does_not_know(monkeypatch: pytest.MonkeyPatch) -> None:
    """The negative control: a misspelt flag fails the parse, and so does a bad value in the settings."""
    with pytest.raises(pytest.fail.Exception):
        parse(["serve", "--control-plane", "cp:8100", "--wrokers", "2"], monkeypatch)
    args = parse(["serve", "--control-plane", "cp:8100", "--workers", "0"], monkeypatch)
    with pytest.raises(ValueError, match="workers"):
        settings_of(args, {"CONDUIT_TOKEN": "t"}, monkeypatch)
    args = parse(["serve", "--control-plane", "cp:8100"], monkeypatch)
    with pytest.raises(AssertionError):
        settings_of(args, {"CONDUIT_TOKEN": "t", "CONDUIT_OTLP_ENDPIONT": "http://c:4317"}, monkeypatch)


def test_migrations_run_before_the_control_plane(
    rendered: dict[str, Rendered], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each control-plane pod migrates in an init step (PostgreSQL's advisory lock serialises the replicas), with the
    database the control plane itself uses."""
    for name in ("base", "overlays/staging", "overlays/production"):
        deployment = rendered[name].get("Deployment", "conduit-control-plane")
        pod = deployment["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        args = parse(expanded_args(init), monkeypatch)
        assert (args.command, args.action) == ("control-plane", "migrate")
        (main,) = pod["containers"]
        assert container_env(init)["CONDUIT_CP_DB"] == container_env(main)["CONDUIT_CP_DB"]
        assert container_env(main)["CONDUIT_CP_DB"].startswith("secret:")
        assert deployment["spec"].get("replicas", 0) >= 2, name


def _mounted_file(rendered: Rendered, pod: dict[str, Any], container: dict[str, Any], path: Path, tmp: Path) -> Path:
    """The file at ``path`` in the container, from the ConfigMap volume mounted above it, written under ``tmp``."""
    for mount in container.get("volumeMounts", []):
        if path.parent == Path(mount["mountPath"]):
            volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
            config_map = rendered.get("ConfigMap", volume["configMap"]["name"])
            assert path.name in config_map["data"], f"{config_map['metadata']['name']} has no {path.name}"
            copy = tmp / path.name
            copy.write_text(config_map["data"][path.name])
            return copy
    raise AssertionError(f"{container['name']}: nothing mounted at {path.parent}")
