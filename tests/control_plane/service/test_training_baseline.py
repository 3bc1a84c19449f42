"""A model trained on a target other than its data set's import target, with a derived feature: its registered
version carries the profile of the rows it was trained on, and everything downstream follows the spec, not the
import: the profile a following server installs, the drift GetMonitoring computes (derived input and ``@prediction``
included), the report, and ``conduit models show|attachment``."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from opentelemetry.sdk.metrics.export import MetricExportResult

from clients._cli_report import fetch_report_inputs
from clients.cli import main
from clients.training import import_frame, register_result
from contract.client import SyncControlPlaneClient
from contract.entities import TRAINING_PROFILE, ModelVersion, VersionRef
from control_plane.protocol import control_plane_pb2 as cp
from tests.conftest import CONDUIT
from tests.control_plane.monitoring.conftest import categorical_sketch, numeric_sketch
from trainers import TrainingResult, bundled, parse_spec, train

from .conftest import ADMIN_TOKEN, Api, Pusher

SPEC = """
[dataset]
name = "credit"
target = "has_mortgage"
[features]
numeric = ["age", "income", "debt ratio"]
categorical = ["city"]
[cleaning]
derived = { "debt ratio" = "debt / income" }
[split]
method = "stratified"
seed = 4
[model]
task = "binary"
estimator = "logistic_regression"
params = { max_iter = 500 }
"""


def _train_and_register(target: str) -> tuple[TrainingResult, ModelVersion]:
    frame = bundled.load("credit")
    with SyncControlPlaneClient.connect(target, token=ADMIN_TOKEN) as client:
        stored, _ = import_frame(client, frame, "credit", source="bundled:credit", target="default")
        result = train(parse_spec(SPEC), frame, dataset_version=stored.version)
        return result, register_result(client, result, model="mortgage")


def _cli(target: str, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*args, "--control-plane", target, "--token", ADMIN_TOKEN])
    return code, out.getvalue(), err.getvalue()


async def test_the_baseline_follows_the_specs_target_and_derived_columns(
    api: Api, pushers: Callable[..., Pusher]
) -> None:
    result, version = await asyncio.to_thread(_train_and_register, api.server.target)
    assert TRAINING_PROFILE in {attachment.name for attachment in version.attachments}

    # What a following server installs as its profile.json (with a server's token): the spec's target, the derived
    # column.
    await api.user("server-1", cp.ROLE_SERVER)
    with SyncControlPlaneClient.connect(api.server.target, token=api.tokens["server-1"]) as client:
        found = await asyncio.to_thread(client.run, client.api.training_profile(VersionRef("mortgage", version=1)))
    assert found is not None
    profile, target = found
    assert target == "has_mortgage"
    assert [column.name for column in profile.columns] == ["age", "income", "debt ratio", "city", "has_mortgage"]
    assert profile == result.profile.profile

    # Served traffic on the derived input and the predictions is compared with that profile.
    ratio = profile.column("debt ratio")
    pusher = pushers(api.server.target, ADMIN_TOKEN)
    labels = {"model": "mortgage", "version": "1"}
    pusher.requests.add(500, {**labels, "status": "OK"})
    served_ratio = np.random.default_rng(1).uniform(ratio.min, ratio.max, 500)
    pusher.sketch(labels, "debt ratio", numeric_sketch(served_ratio, ratio.bin_edges), numeric=True)
    predicted = ["1"] * 400 + ["0"] * 100
    pusher.sketch(labels, "@prediction", categorical_sketch(predicted, {"0", "1"}), numeric=False)
    assert await asyncio.to_thread(pusher.push) == MetricExportResult.SUCCESS
    request = cp.GetMonitoringRequest(ref=cp.VersionRef(model="mortgage", version=1))
    (window,) = (await api.stub.GetMonitoring(request, metadata=api.admin)).windows
    features = {feature.feature: feature for feature in window.features}
    assert set(features) == {"debt ratio", "@prediction"}
    assert list(features["debt ratio"].expected) == [*ratio.bin_counts, ratio.missing]
    # The prediction's baseline is has_mortgage's classes (false, true), not the import target's (default 0/1).
    mortgage = {category.value: category.count for category in profile.column("has_mortgage").top_categories}
    assert list(features["@prediction"].expected)[:2] == [mortgage["false"], mortgage["true"]]


async def test_the_report_and_the_models_commands_name_the_specs_target(api: Api, tmp_path: Path) -> None:
    from reports import render_report

    await asyncio.to_thread(_train_and_register, api.server.target)
    target = api.server.target

    def report() -> str:
        with SyncControlPlaneClient.connect(target, token=ADMIN_TOKEN) as client:
            return render_report(fetch_report_inputs(client, VersionRef("mortgage", version=1)))

    html = await asyncio.to_thread(report)
    assert "<tr><td>target</td><td>has_mortgage</td></tr>" in html
    assert "<tr><td>target at import</td><td>default</td></tr>" in html
    assert "<td>debt ratio</td>" in html  # the derived column's profile

    code, out, err = await asyncio.to_thread(_cli, target, "models", "show", "mortgage:1")
    assert code == 0, err
    assert "classes      0=false, 1=true" in out
    assert "input        'debt ratio' FP32 [-1,1]" in out
    for name in ("evaluation.json", "spec.toml", "environment.json", TRAINING_PROFILE):
        assert f"attachment   {name} (application/" in out

    written = tmp_path / "environment.json"
    code, out, err = await asyncio.to_thread(
        _cli, target, "models", "attachment", "mortgage:1", "environment.json", "-o", str(written)
    )
    assert code == 0, err
    assert json.loads(written.read_text())["classes"] == ["false", "true"]
    assert out.startswith(f"wrote {written} (environment.json of version 1, ")

    # An existing file stays as it is without --force; with it, it is replaced.
    written.write_text("keep me")
    code, out, err = await asyncio.to_thread(
        _cli, target, "models", "attachment", "mortgage:1", "spec.toml", "-o", str(written)
    )
    assert (code, written.read_text()) == (1, "keep me")
    assert err.strip() == f"conduit: {written} exists; pass --force to overwrite it"
    code, out, err = await asyncio.to_thread(
        _cli, target, "models", "attachment", "mortgage:1", "spec.toml", "-o", str(written), "--force"
    )
    assert code == 0 and written.read_text() == SPEC
    # -o -: the bytes as stored, on standard output (a process of its own: the command writes bytes to its fd 1).
    args = [CONDUIT, "models", "attachment", "mortgage:1", "spec.toml", "-o", "-", "--control-plane", target]
    printed = await asyncio.to_thread(
        subprocess.run, [*args, "--token", ADMIN_TOKEN], capture_output=True, check=True, timeout=60
    )
    assert printed.stdout == SPEC.encode()

    # An attachment the version does not have: one line, exit 1, nothing written.
    missing = tmp_path / "nothing.json"
    code, out, err = await asyncio.to_thread(
        _cli, target, "models", "attachment", "mortgage:1", "nothing.json", "-o", str(missing)
    )
    assert code == 1 and not missing.exists()
    assert err.count("\n") == 1 and "has no attachment 'nothing.json'" in err


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'{"columns": [{"kind": "numeric"}]}'])
async def test_a_profile_attachment_that_is_not_a_profile_gives_no_baseline(
    api: Api, model_bytes: bytes, content: bytes
) -> None:
    attachment = cp.AttachmentUpload(name=TRAINING_PROFILE, media_type="application/json", content=content)
    await api.register("odd", model_bytes, attachments=[attachment])
    answer = await api.stub.GetMonitoring(
        cp.GetMonitoringRequest(ref=cp.VersionRef(model="odd", version=1)), metadata=api.admin
    )
    assert not answer.HasField("baseline")
