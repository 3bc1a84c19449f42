"""``conduit serve``'s telemetry and prediction-log flags reach its settings: each bad value is refused naming its
flag (exit 2), and unset flags leave the ``CONDUIT_*`` variables in force."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.cli import main


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--prediction-log-sample", "1.5"], "--prediction-log-sample: Input should be less than or equal to 1"),
        (["--prediction-log-sample", "0.5"], "with --model-repository needs --prediction-log-dir"),
        (["--prediction-log-flush-interval", "0"], "--prediction-log-flush-interval: Input should be greater than 0"),
        (["--prediction-log-flush-rows", "0"], "--prediction-log-flush-rows: Input should be greater than or equal"),
        (["--prediction-log-buffer-rows", "0"], "--prediction-log-buffer-rows: Input should be greater than or equal"),
        (["--prediction-log-buffer-bytes", "0"], "--prediction-log-buffer-bytes: Input should be greater than"),
        (["--prediction-log-outbox-bytes", "0"], "--prediction-log-outbox-bytes: Input should be greater than"),
        (["--otlp-interval", "0"], "--otlp-interval: Input should be greater than 0"),
        (["--trace-sample-ratio", "2"], "--trace-sample-ratio: Input should be less than or equal to 1"),
        (["--metrics-flush-interval", "-1"], "--metrics-flush-interval: Input should be greater than 0"),
    ],
)
def test_a_bad_value_is_refused_naming_its_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    assert main(["serve", "--model-repository", str(tmp_path), *flags]) == 2
    assert message in capsys.readouterr().err


def test_a_flag_overrides_its_variable_and_an_unset_one_leaves_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONDUIT_PREDICTION_LOG_SAMPLE", "7")
    assert main(["serve", "--model-repository", str(tmp_path), "--no-sketches"]) == 2
    assert "--prediction-log-sample: Input should be less than or equal to 1" in capsys.readouterr().err
    monkeypatch.setenv("CONDUIT_OTLP_TEMPORALITY", "sideways")
    assert main(["serve", "--model-repository", str(tmp_path), "--prediction-log-sample", "0"]) == 2
    err = capsys.readouterr().err
    assert "--otlp-temporality: Input should be 'delta' or 'cumulative'" in err
    assert "--prediction-log-sample" not in err
    monkeypatch.setenv("CONDUIT_PREDICTION_LOG_OUTBOX_BYTES", "0")
    flags = ["--otlp-temporality", "delta", "--prediction-log-buffer-bytes", "-1"]
    assert main(["serve", "--model-repository", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert "--prediction-log-buffer-bytes: Input should be greater than or equal" in err
    assert "--prediction-log-outbox-bytes: Input should be greater than or equal" in err
    # Still refused for CONDUIT_PREDICTION_LOG_SAMPLE, so no server starts; the flag overrode its variable.
    assert main(["serve", "--model-repository", str(tmp_path), *flags[:2], "--prediction-log-outbox-bytes", "1"]) == 2
    err = capsys.readouterr().err
    assert "--prediction-log-outbox-bytes" not in err and "--prediction-log-buffer-bytes" not in err


def test_choices_and_switches_are_checked_by_the_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--model-repository", str(tmp_path), "--otlp-temporality", "sideways"])
    assert exited.value.code == 2
    assert "invalid choice: 'sideways'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--model-repository", str(tmp_path), "--sketches=no"])
