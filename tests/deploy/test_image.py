"""The image definition installs what pyproject.toml packages, runs as the user the manifests expect, and starts the
``conduit`` command they call. (No image is built here: the machines that run the tests have no container runtime.)"""

from __future__ import annotations

import re
import tomllib

from tests.conftest import ROOT
from tests.deploy.conftest import KUSTOMIZATIONS, Rendered

DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def test_the_image_copies_every_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    text = DOCKERFILE.read_text()
    copied = set(re.findall(r"^COPY (\w+) \1$", text, flags=re.MULTILINE))
    assert copied == packages | {"native"}
    ignore = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    kept = {line[1:] for line in ignore if line.startswith("!")}
    assert kept == packages | {"pyproject.toml", "README.md", "native"}
    # The native front is compiled into the image from its locked crates; its build outputs stay out.
    assert "native/target" in ignore
    assert re.search(r"maturin build --release --locked", text)
    assert re.search(r'^ENTRYPOINT \["conduit"\]$', text, flags=re.MULTILINE)


def test_pods_run_as_the_image_user(rendered: dict[str, Rendered]) -> None:
    (uid,) = re.findall(r"^USER (\d+):\d+$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    for name in KUSTOMIZATIONS:
        for workload, pod in rendered[name].workloads():
            context = pod["securityContext"]
            assert context["runAsNonRoot"] is True, workload["metadata"]["name"]
            if any(c["image"].split(":")[0].endswith("conduit") for c in pod["containers"]):
                assert context["runAsUser"] == int(uid), workload["metadata"]["name"]
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                security = container["securityContext"]
                assert security["readOnlyRootFilesystem"] is True
                assert security["allowPrivilegeEscalation"] is False
                assert security["capabilities"]["drop"] == ["ALL"]
