"""The control-plane commands' argument handling, without a server: references, durations, flags, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from clients import ConduitError, ErrorCode
from clients._cli_control import _metrics, _pairs, _since, normalize_argv
from clients.cli import main
from contract.entities import VersionRef


def test_parse_ref_forms() -> None:
    assert VersionRef.parse("fraud").model == "fraud"
    assert VersionRef.parse("fraud").version is None and VersionRef.parse("fraud").alias is None
    assert VersionRef.parse("fraud@production").alias == "production"
    assert VersionRef.parse("fraud:12").version == 12
    for bad in ("fraud@", "fraud:x", "a@b@c", "fraud:1@x", ""):
        with pytest.raises(ConduitError) as caught:
            VersionRef.parse(bad)
        assert caught.value.code is ErrorCode.INVALID_ARGUMENT


def test_key_value_flags() -> None:
    assert _pairs(["team=risk", "note=a=b"], "tag") == {"team": "risk", "note": "a=b"}
    assert _metrics(["auc=0.93", "ks=1e-1"]) == {"auc": 0.93, "ks": 0.1}
    for bad in (["novalue"], ["=x"]):
        with pytest.raises(ConduitError):
            _pairs(bad, "tag")
    with pytest.raises(ConduitError) as caught:
        _metrics(["auc=high"])
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT


def test_since_accepts_durations_and_iso_times() -> None:
    assert abs(_since("15m") - (datetime.now(UTC) - timedelta(minutes=15))) < timedelta(seconds=5)
    assert abs(_since("2d") - (datetime.now(UTC) - timedelta(days=2))) < timedelta(seconds=5)
    assert _since("2026-01-02T03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_deploy_target_needs_no_sub_command() -> None:
    assert normalize_argv(["deploy", "fraud@production", "--pool", "p"]) == [
        "deploy",
        "to",
        "fraud@production",
        "--pool",
        "p",
    ]
    assert normalize_argv(["deploy", "rollback", "fraud"]) == ["deploy", "rollback", "fraud"]
    assert normalize_argv(["models", "list"]) == ["models", "list"]


def test_missing_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CONDUIT_TOKEN", raising=False)
    assert main(["models", "list"]) == 2
    assert "CONDUIT_TOKEN" in capsys.readouterr().err


def test_unreachable_control_plane_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # Port 1 on loopback refuses connections.
    assert main(["models", "list", "--control-plane", "127.0.0.1:1", "--token", "cdt_x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("conduit: ") and "UNAVAILABLE" in err and "Traceback" not in err


def test_deploy_without_alias_or_version_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "fraud", "--control-plane", "127.0.0.1:1", "--token", "cdt_x"]) == 1
    assert "NAME@ALIAS or NAME:VERSION" in capsys.readouterr().err
