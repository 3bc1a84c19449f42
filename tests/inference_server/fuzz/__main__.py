"""Fuzz request decoding and validation with atheris: ``python -m tests.inference_server.fuzz [libFuzzer flags] DIR...``

The usual libFuzzer command line: new inputs go to the first corpus directory, every directory seeds the run, and a
finding is written under ``-artifact_prefix`` and ends the run with a non-zero status. ``DEFAULT_FLAGS`` come first,
so the command line overrides them. ``make fuzz`` runs it for ten minutes; ``test_fuzz.py`` for half a minute.

Conduit's Python code on the request path is instrumented for coverage, the kernels' Python wrappers included once
numba has compiled the kernels; the kernels themselves are not (numba compiles their Python bytecode, which
instrumentation would break), so the fuzzer reaches them without feedback from inside.
"""

from __future__ import annotations

import inspect
import sys
import tracemalloc

import atheris

# Imported before instrumenting starts, so that they are left alone: only modules first imported in the block are
# instrumented.
import inference_server.kernels

with atheris.instrument_imports(include=["inference_server", "contract"]):
    from tests.inference_server.fuzz.mutator import Mutator
    from tests.inference_server.fuzz.target import Harness

# Inputs up to 8 KiB (room for a batch of 64 rows and repeated fields), a finding for any input that takes 10 s, and
# a memory ceiling far above what the target needs (about 300 MB).
DEFAULT_FLAGS = ["-max_len=8192", "-timeout=10", "-rss_limit_mb=2048"]


def _libfuzzer_mutate(data: bytes, max_size: int) -> bytes:
    # Looked up at each call: Fuzz() replaces atheris.Mutate with libFuzzer's own once it starts.
    mutated: bytes = atheris.Mutate(data, max_size)
    return mutated


def _instrument_kernel_wrappers() -> None:
    """Instrument the plain functions of the kernels' modules (size switches, small-count paths, error messages).

    Called after ``warm_up``: the kernels are numba dispatchers, not functions, and already compiled.
    """
    for name, module in list(sys.modules.items()):
        if name.startswith(f"{inference_server.kernels.__name__}."):
            for function in vars(module).values():
                if inspect.isfunction(function) and function.__module__ == name:
                    atheris.instrument_func(function)


def main() -> None:
    inference_server.kernels.warm_up()  # as the server does before serving: no request compiles a kernel
    _instrument_kernel_wrappers()
    harness = Harness()
    mutator = Mutator(harness.specs, _libfuzzer_mutate)
    tracemalloc.start()  # the target's memory bound applies while tracemalloc traces
    # libFuzzer runs argv[0] through the shell for -merge, -fork and -minimize_crash: name the module, not its file.
    argv = [f"{sys.executable} -m tests.inference_server.fuzz", *DEFAULT_FLAGS, *sys.argv[1:]]
    atheris.Setup(argv, harness.check, custom_mutator=mutator.mutate, custom_crossover=mutator.crossover)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
