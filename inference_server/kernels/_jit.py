"""How every kernel is built: a cached numba ``njit`` dispatcher whose signatures are declared next to its code.

Nothing compiles at import. ``compile_all`` compiles (or loads from numba's on-disk cache) every declared signature;
the server calls it once at start-up through ``kernels.warm_up``, and the public wrappers only ever pass arguments of
exactly those types, so no request pays for a compilation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numba

__all__ = ["compile_all", "kernel"]

log = logging.getLogger(__name__)

# One entry per kernel: the dispatcher and the argument types it is compiled for.
_REGISTRY: list[tuple[Any, tuple[tuple[Any, ...], ...]]] = []


def kernel(*signatures: tuple[Any, ...], nogil: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """Make ``func`` a cached njit kernel compiled by ``compile_all`` for each tuple of numba argument types."""

    def register(func: Callable[..., Any]) -> Any:
        try:
            dispatcher = numba.njit(cache=True, nogil=nogil)(func)
        except RuntimeError:
            # numba found no writable cache directory (not next to the source, not NUMBA_CACHE_DIR, not the user's
            # cache dir): serve anyway and pay the compilation at every start-up instead of failing the import.
            log.warning("no writable numba cache directory for %s; set NUMBA_CACHE_DIR", func.__qualname__)
            dispatcher = numba.njit(cache=False, nogil=nogil)(func)
        _REGISTRY.append((dispatcher, signatures))
        return dispatcher

    return register


def compile_all() -> int:
    """Compile or load from cache every declared signature of every kernel; returns how many there are."""
    for dispatcher, signatures in _REGISTRY:
        for signature in signatures:
            dispatcher.compile(signature)
    return sum(len(signatures) for _, signatures in _REGISTRY)
