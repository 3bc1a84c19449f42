"""The runner of train jobs: ``conduit train SPEC --register`` as a confined subprocess, with its output kept
(bounded).

A run gets nothing of the control plane's process but what it is given: its own directory (its working directory,
``HOME`` and ``TMPDIR``, deleted afterwards) holding a copy of the spec, the environment variables the runner was
built with, and the token of this run. It runs under CPU-time and address-space limits set by ``_confine`` before
the trainer starts, and under a wall-clock limit kept here; a run stopped by one of them ends its log with one line
saying which.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from control_plane.alerting import _confine
from control_plane.alerting._jobs import Job
from control_plane.alerting._runs import RunResult

__all__ = ["DEFAULT_TRAIN_COMMAND", "BoundedLog", "RunLimits", "TrainRunner"]

# The interpreter running the control plane, so the trainer is the same installed Conduit whatever PATH says.
DEFAULT_TRAIN_COMMAND = (sys.executable, "-m", "clients.cli", "train", "{spec}", "--register")
_CHUNK = 64 * 1024
_MIB = 1024 * 1024
# How running out of address space shows in a run's last words: Python's MemoryError, numpy's "Unable to
# allocate", Rust's (polars) "memory allocation of N bytes failed", C++'s std::bad_alloc, an mmap or a thread that
# could not be made.
_OUT_OF_MEMORY = (
    "MemoryError",
    "Unable to allocate",
    "memory allocation of",
    "bad_alloc",
    "Cannot allocate memory",
    "can't start new thread",
    "failed to spawn thread",
)
_TAIL = 4096


@dataclass(frozen=True, slots=True)
class RunLimits:
    """What one run may use; 0 CPU seconds or memory bytes is no limit of that kind."""

    wall_s: float = 3000.0
    """Seconds from start to end; then the run is killed with everything it started."""
    cpu_s: int = 0
    """CPU seconds of the trainer's process, every thread counted (RLIMIT_CPU)."""
    memory_bytes: int = 0
    """Address space of the trainer's process (RLIMIT_AS): an allocation past it fails."""

    def describe(self) -> str:
        parts = [f"wall clock {self.wall_s:g} s"]
        if self.cpu_s:
            parts.append(f"CPU {self.cpu_s} s")
        if self.memory_bytes:
            parts.append(f"memory {self.memory_bytes // _MIB} MiB")
        return ", ".join(parts)


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

    def last(self, size: int) -> str:
        """The last ``size`` bytes written (or fewer), as text."""
        kept = bytes(self._head + self._tail) if not self._dropped else bytes(self._tail)
        return kept[-size:].decode(errors="replace")

    def text(self) -> str:
        middle = f"\n… {self._dropped} bytes left out …\n".encode() if self._dropped else b""
        return bytes(self._head + middle + self._tail).decode(errors="replace")


class TrainRunner:
    """Runs a train job's spec with ``command`` (``{spec}`` replaced by the path of the run's copy of the spec).

    Args:
        command: the argv; default ``python -m clients.cli train {spec} --register``.
        limits: wall-clock, CPU-time and memory limits of a run.
        max_log_bytes: most bytes of merged stdout and stderr kept.
        env: the whole environment of a run besides ``HOME``, ``TMPDIR`` and ``CONDUIT_TOKEN`` (e.g.
            ``CONDUIT_CONTROL_PLANE``, ``PATH``); nothing is inherited from this process.
        work_dir: where each run's directory is made; default the system's temporary directory.
    """

    def __init__(
        self,
        command: Sequence[str] = DEFAULT_TRAIN_COMMAND,
        *,
        limits: RunLimits = RunLimits(),
        max_log_bytes: int = 256 * 1024,
        env: Mapping[str, str] | None = None,
        work_dir: Path | None = None,
    ) -> None:
        if not any("{spec}" in part for part in command):
            raise ValueError("the train command must contain {spec}")
        self._command = tuple(command)
        self._limits = limits
        self._max_log_bytes = max_log_bytes
        self._env = dict(env or {})
        self._work_dir = work_dir

    @property
    def limits(self) -> RunLimits:
        return self._limits

    def __call__(
        self, job: Job, tick: datetime, token: str | None = None, env: Mapping[str, str] | None = None
    ) -> RunResult:
        """Run ``job``'s spec; ``token`` becomes the run's ``CONDUIT_TOKEN``; ``env`` adds variables to this run."""
        if job.spec is None:
            raise ValueError(f"job {job.name!r} has no spec to run")
        log = BoundedLog(self._max_log_bytes)
        if self._work_dir is not None:
            self._work_dir.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix=f"{job.name}-", dir=self._work_dir))
        try:
            spec = run_dir / job.spec.name
            try:
                shutil.copyfile(job.spec, spec)
            except OSError as exc:
                log.write(f"cannot read the spec: {exc.strerror or exc}\n".encode())
                return RunResult(ok=False, log=log.text())
            return self._run(self._argv(spec), run_dir, token, log, env or {})
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

    def _argv(self, spec: Path) -> list[str]:
        return [part.replace("{spec}", str(spec)) for part in self._command]

    def _run(
        self, argv: list[str], run_dir: Path, token: str | None, log: BoundedLog, extra: Mapping[str, str]
    ) -> RunResult:
        limits = self._limits
        log.write(f"$ {' '.join(argv)}\n".encode())
        env = {**self._env, **extra, "HOME": str(run_dir), "TMPDIR": str(run_dir)}
        if token is not None:
            env["CONDUIT_TOKEN"] = token
        confined = [
            sys.executable, "-I", "-S", _confine.__file__, str(limits.cpu_s), str(limits.memory_bytes), "--", *argv,
        ]  # fmt: skip
        try:
            # A session of its own, so that the wall-clock limit kills the trainer's children (study workers) too.
            process = subprocess.Popen(
                confined, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=run_dir, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            log.write(f"cannot start the trainer: {exc}\n".encode())
            return RunResult(ok=False, log=log.text())
        assert process.stdout is not None
        reader = threading.Thread(target=_drain, args=(process.stdout, log), daemon=True)
        reader.start()
        timed_out = False
        try:
            code = process.wait(timeout=limits.wall_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        # Whatever the trainer left behind dies with the run: a lingering child would hold the log pipe open.
        _kill_group(process.pid)
        code = process.wait()
        reader.join()
        if timed_out:
            log.write(f"\nstopped: the run went over its wall-clock limit of {limits.wall_s:g} s\n".encode())
            return RunResult(ok=False, log=log.text())
        if code != 0:
            log.write(f"\n{self._reason(code, log.last(_TAIL))}\n".encode())
        return RunResult(ok=code == 0, log=log.text())

    def _reason(self, code: int, tail: str) -> str:
        """The one line that ends a failed run's log."""
        limits = self._limits
        if code == -signal.SIGXCPU and limits.cpu_s:
            return f"stopped: the run went over its CPU-time limit of {limits.cpu_s} s"
        if limits.memory_bytes and any(sign in tail for sign in _OUT_OF_MEMORY):
            return f"failed: the run went over its memory limit of {limits.memory_bytes // _MIB} MiB"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
            return f"killed by signal {-code}"
        return f"exit status {code}"


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _drain(stream: IO[bytes], log: BoundedLog) -> None:
    with stream:
        while chunk := os.read(stream.fileno(), _CHUNK):
            log.write(chunk)
