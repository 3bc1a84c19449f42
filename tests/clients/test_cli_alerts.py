"""``conduit alerts …`` and ``conduit jobs …`` against a real control plane on loopback.

The CLI blocks while the control plane runs on the test's event loop, so it runs in threads.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clients.cli import main
from contract.client import ControlPlaneClient
from control_plane.app import ControlPlaneServer
from control_plane.settings import ControlPlaneSettings
from tests.conftest import TrainedModel

ADMIN_TOKEN = "cdt_cli-alerts-admin-token-0123456789abcdefghijk"


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[str]:
    settings = ControlPlaneSettings(home=tmp_path / "home", grpc_port=0, admin_token=ADMIN_TOKEN)
    server = ControlPlaneServer(settings)
    await server.start()
    yield server.target
    await server.stop(grace=1.0)


async def conduit(target: str, *args: str) -> int:
    return await asyncio.to_thread(main, [*args, "--control-plane", target, "--token", ADMIN_TOKEN])


async def test_alert_rules_from_the_command_line(
    target: str, classifier: TrainedModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add = ["alerts", "add", "drifting", "--model", "fraud@production", "--when", "drift>0.2", "--notify"]
    # A misspelt model or alias watches nothing: one line, exit 1.
    assert await conduit(target, *add, "log") == 1
    assert capsys.readouterr().err == "conduit: CreateAlertRule failed with NOT_FOUND: model 'fraud' not found\n"
    model = tmp_path / "fraud.onnx"
    model.write_bytes(classifier.onnx)
    async with ControlPlaneClient.connect(target, token=ADMIN_TOKEN) as client:
        await client.register_version("fraud", model, aliases=["production"])
    wrong = ["alerts", "add", "drifting", "--model", "fraud@prodution", "--when", "drift>0.2", "--notify", "log"]
    assert await conduit(target, *wrong) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "model 'fraud' has no alias 'prodution' (its aliases: production)" in err
    capsys.readouterr()
    # Loopback is refused by default (the control plane's CONDUIT_ALERTS_WEBHOOK_ALLOW opens it): one line, no secret.
    assert await conduit(target, *add, "webhook:http://127.0.0.1:9/secret-path") == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "loopback" in err and "secret-path" not in err
    assert await conduit(target, *add, "webhook:https://hooks.example.com/secret-path") == 0
    assert (
        await conduit(
            target, "alerts", "add", "slow", "--model", "fraud", "--when", "p99_ms > 50 for 2m", "--notify", "log"
        )
        == 0
    )
    capsys.readouterr()
    assert await conduit(target, "alerts", "add", "bad", "--model", "fraud", "--when", "p99 >", "--notify", "log") == 1
    assert "unknown metric" in capsys.readouterr().err

    assert await conduit(target, "alerts", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["RULE", "MODEL", "WHEN", "WINDOW", "NOTIFY", "SILENCED", "UNTIL"]
    assert lines[1].split() == [
        "drifting",
        "fraud@production",
        *("drift", ">", "0.2", "over", "10m"),
        "10m",
        "webhook:https://hooks.example.com/…",
        "-",
    ]
    assert lines[2].split()[:3] == ["slow", "fraud", "p99_ms"] and lines[2].split()[7] == "2m"

    assert await conduit(target, "alerts", "silence", "drifting", "--for", "1h") == 0
    capsys.readouterr()
    assert await conduit(target, "alerts", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in listed] == ["drifting", "slow"] and "silenced_until" in listed[0]
    assert [(r["condition"], r["window"]) for r in listed] == [
        ("drift > 0.2 over 10m", "10m"),
        ("p99_ms > 50 for 2m", "2m"),
    ]
    assert await conduit(target, "alerts", "history") == 0
    assert capsys.readouterr().out.split() == [
        "AT",
        "(UTC)",
        "RULE",
        "VERSION",
        "EVENT",
        "VALUE",
        "CHANNEL",
        "DELIVERY",
        "TRIES",
        "ERROR",
        "DETAIL",
    ]
    assert await conduit(target, "alerts", "ack", "drifting", "--model", "fraud") == 1
    assert "no firing alert" in capsys.readouterr().err
    assert await conduit(target, "alerts", "remove", "drifting") == 0
    async with ControlPlaneClient.connect(target, token=ADMIN_TOKEN) as client:
        assert [r.name for r in await client.list_alert_rules()] == ["slow"]


async def test_jobs_from_the_command_line(target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "nightly.toml"
    spec.write_text("[model]\nname = 'fraud'\n")
    assert await conduit(target, "jobs", "add", "nightly", "--cron", "0 3 * * *", "--train", str(spec)) == 0
    assert await conduit(target, "jobs", "add", "sweep", "--cron", "*/5 * * * *", "--gc") == 0
    assert await conduit(target, "jobs", "add", "check", "--cron", "* * * * *", "--evaluate") == 0
    capsys.readouterr()
    assert await conduit(target, "jobs", "list") == 0
    rows = [line.split()[:3] for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [["check", "*", "*"], ["nightly", "0", "3"], ["sweep", "*/5", "*"]]
    async with ControlPlaneClient.connect(target, token=ADMIN_TOKEN) as client:
        jobs = {j.name: j for j in await client.list_jobs()}
    assert jobs["nightly"].spec == spec.read_text() and jobs["nightly"].kind == "train"

    assert await conduit(target, "jobs", "run", "sweep") == 0
    out = capsys.readouterr().out
    assert "succeeded" in out and "deleted 0 unreferenced artifact(s)" in out
    assert await conduit(target, "jobs", "history", "sweep", "--logs") == 0
    history = capsys.readouterr().out
    assert "succeeded" in history and "deleted 0 unreferenced artifact(s)" in history
    assert await conduit(target, "jobs", "remove", "sweep") == 0
    assert await conduit(target, "jobs", "remove", "sweep") == 1
    assert "does not exist" in capsys.readouterr().err
