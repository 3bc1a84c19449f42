"""`conduit report` and `conduit report compare` against a real control plane, as a viewer: versions trained and
registered with `conduit train`, reports written offline-ready, and bad references or paths refused with exit 1."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import unescape
from pathlib import Path

from contract.client import SyncControlPlaneClient
from contract.entities import VersionRef
from tests.control_plane.e2e.conftest import ADMIN_TOKEN, Cluster, start_cluster
from tests.reports.conftest import figure_ids, figure_texts

__all__ = ["start_cluster"]  # the fixture, imported for pytest

SPEC = """
[dataset]
name = "credit"
target = "default"
[features]
numeric = ["age", "income", "debt", "months_at_address"]
categorical = ["city", "employment"]
[split]
method = "stratified"
test_size = 0.25
seed = 5
[model]
task = "binary"
estimator = "random_forest"
params = {{ n_estimators = {trees}, max_depth = {depth} }}
[register]
name = "credit-report"
"""


def _train(cluster: Cluster, tmp_path: Path, *, trees: int, depth: int, alias: str) -> None:
    spec = tmp_path / f"spec-{trees}-{depth}.toml"
    spec.write_text(SPEC.format(trees=trees, depth=depth))
    cluster.cli("train", str(spec), "--register", "--alias", alias)


def test_reports_comparisons_and_refusals_as_a_viewer(start_cluster: Callable[[str], Cluster], tmp_path: Path) -> None:
    cluster = start_cluster("")
    cluster.cli("datasets", "import", "bundled:credit", "--name", "credit", "--target", "default")
    _train(cluster, tmp_path, trees=8, depth=4, alias="staging")
    _train(cluster, tmp_path, trees=20, depth=8, alias="production")
    viewer = cluster.cli("users", "create", "viewer-1", "--role", "viewer").stdout.strip()
    first = json.loads(cluster.cli("models", "show", "credit-report:1", "--json", token=viewer).stdout)
    second = json.loads(cluster.cli("models", "show", "credit-report@production", "--json", token=viewer).stdout)

    report = tmp_path / "out" / "report.html"
    report.parent.mkdir()
    done = cluster.cli("report", "credit-report@staging", "-o", str(report), token=viewer)
    assert done.stdout.startswith(f"wrote {report} (credit-report:1, ")
    html = report.read_text()
    assert figure_ids(html) == [
        "plot-roc",
        "plot-pr",
        "plot-ks",
        "plot-confusion",
        "plot-calibration",
        "plot-importances",
        "plot-tree-0",
        "plot-tree-1",
        "plot-tree-2",
    ]
    assert [t for t in figure_texts(html, "plot-roc") if "AUC = " in t] == [
        f"1 (AUC = {first['metrics']['roc_auc']:.4f})"
    ]
    assert f"KS = {first['metrics']['ks']:.4f}" in figure_texts(html, "plot-ks")
    # The data set's profile came from GetDataset, the spec and packages from the attachments.
    assert re.search(r"Profile \(\d[\d,]* rows\)", html) and "<tr><th>income</th>" in html
    assert "n_estimators = 8" in html and "scikit-learn" in html
    assert [m for m in re.findall(r"https?://[^\"]*", html) if "w3.org" not in m] == []
    assert list(report.parent.iterdir()) == [report]  # no temporary file left beside it

    comparison = tmp_path / "compare.html"
    cluster.cli("report", "compare", "credit-report:1", "credit-report@production", "-o", str(comparison), token=viewer)
    html = comparison.read_text()
    assert figure_ids(html) == ["plot-compare-roc", "plot-compare-pr", "plot-compare-ks", "plot-compare-calibration"]
    for version in (first, second):
        row = re.search(r"<tr><th>roc_auc</th>(.*?)</tr>", html, re.DOTALL)
        assert row is not None and f">{version['metrics']['roc_auc']:.4f}<" in row[1]
    roc = figure_texts(html, "plot-compare-roc")
    assert f"A v1 · 1 (AUC = {first['metrics']['roc_auc']:.4f})" in roc
    assert f"B v2 · 1 (AUC = {second['metrics']['roc_auc']:.4f})" in roc

    # A version whose evaluation.json has parts of the wrong shape: the report names them and draws the rest.
    first_ref = VersionRef("credit-report", version=1)
    with SyncControlPlaneClient.connect(cluster.control_plane.address, token=ADMIN_TOKEN) as client:
        artifact = tmp_path / "model.onnx"
        client.run(client.api.download(first_ref, artifact))
        content = client.run(client.api.get_attachment(first_ref, "evaluation.json")).content
        evaluation = json.loads(content)
        evaluation |= {"rows": {"train": "x"}, "confusion_matrix": "x", "trees": {"trees": [{}]}}
        client.run(
            client.api.register_version(
                "credit-report",
                artifact,
                metrics=first["metrics"],
                tags={"task": "binary", "estimator": "random_forest"},
                attachments={"evaluation.json": ("application/json", json.dumps(evaluation).encode())},
            )
        )
    malformed = tmp_path / "malformed.html"
    done = cluster.cli("report", "credit-report:3", "-o", str(malformed), token=viewer)
    assert done.stdout.startswith(f"wrote {malformed} (credit-report:3, ") and done.stderr == ""
    html = unescape(malformed.read_text())
    assert figure_ids(html) == ["plot-roc", "plot-pr", "plot-ks", "plot-calibration", "plot-importances"]
    for part in ("rows", "confusion_matrix", "trees"):
        assert f"evaluation.json's {part} is malformed" in html

    # Refusals: one line on stderr, exit 1, nothing written.
    out = tmp_path / "report.html"

    for args, named in (
        (["nope:1"], "nope"),
        (["credit-report:7"], "7"),
        (["credit-report@canary"], "canary"),
        (["compare", "credit-report:1", "credit-report:9"], "9"),
    ):
        done = cluster.cli("report", *args, "-o", str(out), token=viewer, check=False)
        assert done.returncode == 1, done
        assert done.stderr.startswith("conduit: ") and done.stderr.count("\n") == 1, done.stderr
        assert "failed with NOT_FOUND: " in done.stderr and named in done.stderr, done.stderr
    assert not out.exists()

    done = cluster.cli(
        "report", "credit-report:1", "-o", str(tmp_path / "missing" / "r.html"), token=viewer, check=False
    )
    assert done.returncode == 1
    assert done.stderr == f"conduit: cannot write {tmp_path / 'missing' / 'r.html'}: No such file or directory\n"

    done = cluster.cli("report", "credit-report:1", "credit-report:1", "-o", str(out), token=viewer, check=False)
    assert done.returncode == 1 and "expected NAME[@ALIAS|:VERSION] or compare A B" in done.stderr
