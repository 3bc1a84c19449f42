"""Train jobs run their command as a subprocess and keep its output, bounded."""

from __future__ import annotations

import sys
from pathlib import Path

from control_plane.alerting import BoundedLog, Job, TrainRunner

from .conftest import START

JOB = Job.parse("retrain", cron="0 3 * * *", train="specs/fraud.toml")


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code, "{spec}"]


def test_a_successful_run_keeps_its_output(tmp_path: Path) -> None:
    result = TrainRunner(python("import sys; print('spec', sys.argv[1]); print('oops', file=sys.stderr)"))(JOB, START)
    assert result.ok
    assert "spec specs/fraud.toml\n" in result.log and "oops\n" in result.log
    assert result.log.startswith("$ ")


def test_a_failed_run_says_its_exit_status() -> None:
    result = TrainRunner(python("import sys; print('bad spec'); sys.exit(3)"))(JOB, START)
    assert not result.ok and result.log.endswith("bad spec\n\nexit status 3\n")


def test_a_run_past_its_timeout_is_killed_with_its_children() -> None:
    # The child sleeps on holding the output pipe: the runner must not wait for it.
    code = (
        "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print('started', flush=True); time.sleep(60)"
    )
    result = TrainRunner(python(code), timeout_s=1.0)(JOB, START)
    assert not result.ok
    assert "started" in result.log and "stopped after 1 s" in result.log


def test_a_command_that_cannot_start_is_a_failed_run() -> None:
    result = TrainRunner(["/nonexistent/conduit", "train", "{spec}"])(JOB, START)
    assert not result.ok and "cannot start the trainer" in result.log


def test_long_output_keeps_its_beginning_and_its_end() -> None:
    code = "import sys\nfor i in range(100000): print(f'line {i}')"
    result = TrainRunner(python(code), max_log_bytes=4096)(JOB, START)
    assert result.ok
    assert "line 0\n" in result.log and "line 99999\n" in result.log
    assert "bytes left out" in result.log
    assert len(result.log.encode()) < 4096 + 200


def test_the_bounded_log_keeps_everything_that_fits() -> None:
    log = BoundedLog(100)
    for _ in range(3):
        log.write(b"0123456789")
    assert log.text() == "0123456789" * 3
