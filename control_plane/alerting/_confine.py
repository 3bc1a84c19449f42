"""Become a command under resource limits: ``python -I -S _confine.py CPU_S MEMORY_BYTES -- COMMAND…``.

``TrainRunner`` starts a job as this script, run by its path. It sets the limits on its own process and then
replaces itself with the command (``exec``), so they hold from the command's first instruction and bind every
process the command starts. Setting them from the parent instead would need ``preexec_fn``, which is unsafe in the
threaded control plane, or ``prlimit`` after the start, which leaves the command a moment without limits.

Standard library only: run by path in isolated mode, it imports nothing of Conduit, so the job does not pay for the
control plane's imports.
"""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Sequence

__all__ = ["CPU_GRACE_S", "confine", "main"]

CPU_GRACE_S = 5
"""Seconds between SIGXCPU at the CPU-time limit, which ends a process that does not handle it, and SIGKILL."""
CANNOT_START = 127
"""Exit status when the command cannot be started (as a shell answers)."""


def _lower(limit: int, soft: int, hard: int) -> None:
    # A process may lower its limits, never raise them past the hard limit it was given.
    _, current = resource.getrlimit(limit)
    if current != resource.RLIM_INFINITY:
        hard = min(hard, current)
        soft = min(soft, hard)
    resource.setrlimit(limit, (soft, hard))


def confine(cpu_s: int, memory_bytes: int) -> None:
    """Limit this process (and what it starts) to ``cpu_s`` seconds of CPU and ``memory_bytes`` of address space;
    0 leaves that limit as it is. Core dumps are off: one would hold the job's data and its token."""
    _lower(resource.RLIMIT_CORE, 0, 0)
    if cpu_s > 0:
        _lower(resource.RLIMIT_CPU, cpu_s, cpu_s + CPU_GRACE_S)
    if memory_bytes > 0:
        _lower(resource.RLIMIT_AS, memory_bytes, memory_bytes)


def main(argv: Sequence[str]) -> int:
    """Parse ``CPU_S MEMORY_BYTES -- COMMAND…``, confine, exec; returns only when the command cannot start."""
    if len(argv) < 4 or argv[2] != "--":
        print("usage: _confine.py CPU_S MEMORY_BYTES -- COMMAND…", file=sys.stderr)
        return 2
    confine(int(argv[0]), int(argv[1]))
    command = list(argv[3:])
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"cannot start the trainer: {exc}", file=sys.stderr)
    return CANNOT_START


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
