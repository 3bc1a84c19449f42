"""Hot-path kernels of the inference server: BYTES tensor codec, checked narrowing casts, drift histogram sketches.

Each public function keeps one contract whichever implementation runs behind it. Kernels are numba ``njit`` with
``cache=True`` and declared signatures; ``warm_up()`` compiles them (or loads them from numba's cache) at start-up and
the wrappers only pass those exact types, so no request ever compiles.

Which path each function takes, decided with ``benchmarks/kernels.py`` (best of alternating samples on a shared
2-core VM; numba 0.68, numpy 2.4, CPython 3.11; "plain" is the numpy/Python equivalent, times per call):

- ``decode_bytes``: a kernel validates the framing in one pass and writes a ``struct`` format, and one
  ``Struct.unpack_from`` creates every ``bytes`` object in C (faster than slicing in a Python loop). From 12
  elements: 64 x 16 B 15.4 -> 5.3 us (2.9x), 4096: 999 -> 206 us (4.9x). Below 12 the kernel's fixed ~2 us loses
  (0.35x at 1 element), so a ``struct.unpack_from`` loop with the same checks and messages runs instead.
- ``encode_bytes``, object arrays: one ``b"".join`` gathers the payload (all-ASCII text encodes in one call) and a
  kernel interleaves the length prefixes. From 48 elements: 64 bytes 7.1 -> 6.4 us (1.1x), 64 ASCII strings 9.7 ->
  7.1 us (1.4x), 4096: 2.6-3.9x; non-ASCII strings tie up to 64 (0.95x) and gain 1.4x at 4096. Below 48, a Python
  loop (0.15x for the kernel at 1 element).
- ``encode_bytes``, numpy ``S``/``U`` arrays: kernels frame (and UTF-8 encode) straight from the array's buffer.
  From 10 elements: 64 words 8.8 -> 2.3 us (S, 3.8x) and 14.1 -> 3.1 us (U, 4.5x), 4096: 16x and 7.7x. Below 10,
  ``tolist()`` and the Python loop.
- ``cast_checked``: one fused kernel pass (range check and write, branch-free) for int32/int64/uint32/uint64 to
  int8/int16/uint8/uint16, at every size: 1.7-2.0x over the faster of ``(a < lo) | (a > hi)`` and
  ``min()/max()`` plus ``astype`` at 1 to 64 elements (3.4 -> 2.0 us), 2.2-3.5x at 4096 to 1M. Other pairs take
  the numpy check (same error); float targets are a plain ``astype``.
- ``histogram_counts``: always the kernel. 64 rows x 32 features, 10 bins: 308 -> 9.8 us (32x) against
  ``searchsorted`` + ``bincount`` per feature, 4096 rows: 8x; 1000 bins: 2.8x. Slots are counted branch-free: a
  binary search looked fast on a repeated batch but was 3x slower on fresh ones (mispredicted branches); it is
  kept only past 512 bins.

Cache: ``warm_up()`` takes about 5 s when it compiles all 22 signatures and 0.35 s when it loads them from numba's
cache. numba looks first in ``NUMBA_CACHE_DIR`` if set, then next to the sources (``kernels/__pycache__``), then in
the user's cache directory (``~/.cache/numba``): a server whose install is read-only caches there (checked as a
non-root user: the second start compiled nothing). With none writable the kernels still work but compile at every
start-up, and a warning says so; such deployments should set ``NUMBA_CACHE_DIR``.
"""

from __future__ import annotations

import logging
import time

from inference_server.kernels._cast import cast_checked
from inference_server.kernels._decode import decode_bytes
from inference_server.kernels._encode import encode_bytes
from inference_server.kernels._jit import compile_all
from inference_server.kernels._sketch import histogram_counts

__all__ = ["cast_checked", "decode_bytes", "encode_bytes", "histogram_counts", "warm_up"]

log = logging.getLogger(__name__)


def warm_up() -> None:
    """Compile every kernel signature, or load it from numba's on-disk cache; call once before serving."""
    started = time.perf_counter()
    signatures = compile_all()
    log.info("numba kernels ready: %d signatures in %.2f s", signatures, time.perf_counter() - started)
