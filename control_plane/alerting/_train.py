"""The runner of train jobs: ``conduit train SPEC --register`` as a subprocess, with its output kept (bounded)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO

from control_plane.alerting._jobs import Job
from control_plane.alerting._runs import RunResult

__all__ = ["DEFAULT_TRAIN_COMMAND", "BoundedLog", "TrainRunner"]

# The interpreter running the control plane, so the trainer is the same installed Conduit whatever PATH says.
DEFAULT_TRAIN_COMMAND = (sys.executable, "-m", "clients.cli", "train", "{spec}", "--register")
_CHUNK = 64 * 1024


class BoundedLog:
    """Keeps the first quarter and the last three quarters of ``max_bytes`` of a stream: the start says what ran,
    the end why it stopped; the middle is replaced by a line saying how much was left out."""

    def __init__(self, max_bytes: int) -> None:
        self._head_max = max_bytes // 4
        self._tail_max = max_bytes - self._head_max
        self._head = bytearray()
        self._tail = bytearray()
        self._dropped = 0

    def write(self, data: bytes) -> None:
        room = self._head_max - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        self._tail += data
        excess = len(self._tail) - self._tail_max
        if excess > 0:
            del self._tail[:excess]
            self._dropped += excess

    def text(self) -> str:
        middle = f"\n… {self._dropped} bytes left out …\n".encode() if self._dropped else b""
        return bytes(self._head + middle + self._tail).decode(errors="replace")


class TrainRunner:
    """Runs a train job's spec with ``command`` (``{spec}`` replaced by the spec's path).

    Args:
        command: the argv; default ``python -m clients.cli train {spec} --register``.
        timeout_s: the run is killed (its whole process group) after this long and counts as failed.
        max_log_bytes: most bytes of merged stdout and stderr kept.
        env: the environment of the run (e.g. ``CONDUIT_CONTROL_PLANE`` and a token); default this process's.
        cwd: its working directory; relative spec paths resolve from there.
    """

    def __init__(
        self,
        command: Sequence[str] = DEFAULT_TRAIN_COMMAND,
        *,
        timeout_s: float = 3000.0,
        max_log_bytes: int = 256 * 1024,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        if not any("{spec}" in part for part in command):
            raise ValueError("the train command must contain {spec}")
        self._command = tuple(command)
        self._timeout_s = timeout_s
        self._max_log_bytes = max_log_bytes
        self._env = None if env is None else dict(env)
        self._cwd = cwd

    def __call__(self, job: Job, tick: datetime) -> RunResult:
        if job.spec is None:
            raise ValueError(f"job {job.name!r} is not a train job")
        argv = [part.replace("{spec}", str(job.spec)) for part in self._command]
        log = BoundedLog(self._max_log_bytes)
        log.write(f"$ {' '.join(argv)}\n".encode())
        try:
            # A session of its own, so that a timeout kills the trainer's children (study workers) too.
            process = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self._env,
                cwd=self._cwd, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            log.write(f"cannot start the trainer: {exc}\n".encode())
            return RunResult(ok=False, log=log.text())
        assert process.stdout is not None
        reader = threading.Thread(target=_drain, args=(process.stdout, log), daemon=True)
        reader.start()
        timed_out = False
        try:
            code = process.wait(timeout=self._timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        # Whatever the trainer left behind dies with the run: a lingering child would hold the log pipe open.
        _kill_group(process.pid)
        code = process.wait()
        reader.join()
        if timed_out:
            log.write(f"\nstopped after {self._timeout_s:g} s (the job's timeout)\n".encode())
            return RunResult(ok=False, log=log.text())
        if code != 0:
            log.write(f"\nexit status {code}\n".encode())
        return RunResult(ok=code == 0, log=log.text())


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _drain(stream: IO[bytes], log: BoundedLog) -> None:
    with stream:
        while chunk := os.read(stream.fileno(), _CHUNK):
            log.write(chunk)
