"""Train jobs run their command as a confined subprocess: a directory of its own with a copy of the spec, only the
environment it is given, CPU-time, memory and wall-clock limits that end the log with one line naming them, and its
output kept, bounded."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from control_plane.alerting import AlertingSettings, BoundedLog, Job, RunLimits, TrainRunner
from control_plane.app import main

from .conftest import START

MIB = 1024 * 1024


@pytest.fixture
def job(tmp_path: Path) -> Job:
    spec = tmp_path / "specs" / "fraud.toml"
    spec.parent.mkdir()
    spec.write_text("[register]\nname = 'fraud'\n")
    return Job.parse("retrain", cron="0 3 * * *", train=spec)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code, "{spec}"]


def last_line(log: str) -> str:
    return log.rstrip("\n").splitlines()[-1]


def test_a_successful_run_keeps_its_output(job: Job) -> None:
    code = "import sys; print('spec', open(sys.argv[1]).read().strip()); print('oops', file=sys.stderr)"
    result = TrainRunner(python(code))(job, START)
    assert result.ok, result.log
    assert "spec [register]\nname = 'fraud'\n" in result.log and "oops\n" in result.log
    assert result.log.startswith("$ ")


def test_a_run_sees_only_its_directory_its_environment_and_its_token(
    job: Job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What this process holds (as the control plane does) must not reach the run.
    monkeypatch.setenv("CONDUIT_ADMIN_TOKEN", "cdt_admin-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    seen = tmp_path / "seen.json"
    code = (
        "import json, os, sys; json.dump({'env': dict(os.environ), 'cwd': os.getcwd(), 'spec': sys.argv[1], "
        f"'listing': os.listdir('.')}}, open({str(seen)!r}, 'w'))"
    )
    work = tmp_path / "runs"
    runner = TrainRunner(python(code), env={"CONDUIT_CONTROL_PLANE": "127.0.0.1:1", "PATH": "/usr/bin"}, work_dir=work)
    result = runner(job, START, "cdt_run-token")
    assert result.ok, result.log
    run = json.loads(seen.read_text())
    run_dir = run["cwd"]
    assert Path(run_dir).parent == work and run["listing"] == ["fraud.toml"]
    assert run["spec"] == os.path.join(run_dir, "fraud.toml")
    # Python may add LC_CTYPE when it coerces a C locale; nothing else is added.
    assert set(run["env"]) - {"LC_CTYPE"} == {"CONDUIT_CONTROL_PLANE", "PATH", "HOME", "TMPDIR", "CONDUIT_TOKEN"}
    assert run["env"]["CONDUIT_TOKEN"] == "cdt_run-token"
    assert run["env"]["HOME"] == run["env"]["TMPDIR"] == run_dir
    assert list(work.iterdir()) == []  # the run's directory is gone with the run


def test_a_failed_run_says_its_exit_status(job: Job) -> None:
    result = TrainRunner(python("import sys; print('bad spec'); sys.exit(3)"))(job, START)
    assert not result.ok and result.log.endswith("bad spec\n\nexit status 3\n")


def test_a_run_past_its_wall_clock_limit_is_killed_with_its_children(job: Job) -> None:
    # The child sleeps on holding the output pipe: the runner must not wait for it.
    code = (
        "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print('started', flush=True); time.sleep(60)"
    )
    result = TrainRunner(python(code), limits=RunLimits(wall_s=1.0))(job, START)
    assert not result.ok and "started" in result.log
    assert last_line(result.log) == "stopped: the run went over its wall-clock limit of 1 s"


def test_a_run_past_its_cpu_time_limit_is_stopped(job: Job) -> None:
    code = "print('spinning', flush=True)\nwhile True: pass"
    result = TrainRunner(python(code), limits=RunLimits(wall_s=60.0, cpu_s=1))(job, START)
    assert not result.ok and "spinning" in result.log
    assert last_line(result.log) == "stopped: the run went over its CPU-time limit of 1 s"


@pytest.mark.parametrize(
    "allocation",
    [
        "bytearray(4 * 1024**3)",  # Python: MemoryError
        "import numpy; numpy.ones(4 * 1024**3 // 8)",  # numpy: Unable to allocate
        "import polars; polars.int_range(0, 4 * 1024**3 // 8, eager=True)",  # polars (Rust): allocation failed
    ],
)
def test_a_run_past_its_memory_limit_fails_with_one_line_naming_it(job: Job, allocation: str) -> None:
    code = f"print('allocating', flush=True)\n{allocation}\nprint('allocated')"
    result = TrainRunner(python(code), limits=RunLimits(wall_s=60.0, memory_bytes=2048 * MIB))(job, START)
    assert not result.ok and "allocating" in result.log and "allocated\n" not in result.log
    assert last_line(result.log) == "failed: the run went over its memory limit of 2048 MiB"


def test_the_limits_bind_what_the_run_starts(job: Job) -> None:
    child = "bytearray(2 * 1024**3); print('child allocated')"
    code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}], check=True)"
    result = TrainRunner(python(code), limits=RunLimits(wall_s=60.0, memory_bytes=512 * MIB))(job, START)
    assert not result.ok and "\nchild allocated\n" not in result.log and "MemoryError" in result.log


def test_a_command_that_cannot_start_is_a_failed_run(job: Job) -> None:
    result = TrainRunner(["/nonexistent/conduit", "train", "{spec}"])(job, START)
    assert not result.ok and "cannot start the trainer" in result.log


def test_a_missing_spec_is_a_failed_run(tmp_path: Path) -> None:
    gone = Job.parse("retrain", cron="0 3 * * *", train=tmp_path / "gone.toml")
    result = TrainRunner(python("print('ran')"))(gone, START)
    assert not result.ok and "cannot read the spec" in result.log and "ran" not in result.log


def test_long_output_keeps_its_beginning_and_its_end(job: Job) -> None:
    code = "import sys\nfor i in range(100000): print(f'line {i}')"
    result = TrainRunner(python(code), max_log_bytes=4096)(job, START)
    assert result.ok
    assert "line 0\n" in result.log and "line 99999\n" in result.log
    assert "bytes left out" in result.log
    assert len(result.log.encode()) < 4096 + 200


def test_the_bounded_log_keeps_everything_that_fits() -> None:
    log = BoundedLog(100)
    for _ in range(3):
        log.write(b"0123456789")
    assert log.text() == "0123456789" * 3
    assert log.last(4) == "6789"


@pytest.mark.parametrize(
    "name",
    ["CONDUIT_ADMIN_TOKEN", "CONDUIT_TOKEN", "CONDUIT_CP_DB", "CONDUIT_ALERTS_SMTP_PASSWORD", "AWS_SECRET_ACCESS_KEY"],
)
def test_no_setting_passes_a_secret_of_the_control_plane_to_a_run(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONDUIT_ALERTS_TRAIN_ENV", f"PATH, {name}")
    with pytest.raises(ValidationError, match=f"'{name}' cannot be passed to a training job"):
        AlertingSettings()
    assert main({"home": tmp_path}) == 2
    assert capsys.readouterr().err == (
        f"conduit control-plane: train_env: '{name}' cannot be passed to a training job\n"
    )


def test_the_limits_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDUIT_ALERTS_TRAIN_CPU_S", "60")
    monkeypatch.setenv("CONDUIT_ALERTS_TRAIN_MEMORY_BYTES", str(2 * 1024 * MIB))
    monkeypatch.setenv("CONDUIT_ALERTS_TRAIN_ENV", "PATH,LANG")
    settings = AlertingSettings()
    assert (settings.train_cpu_s, settings.train_memory_bytes) == (60, 2 * 1024 * MIB)
    assert settings.train_env_names() == ["PATH", "LANG"]
    with pytest.raises(ValidationError):
        AlertingSettings(train_memory_bytes=MIB)
