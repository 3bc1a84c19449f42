"""The hot-path kernels through their public functions: BYTES codec, checked casts, histogram sketches, warm-up.

Sizes are chosen on both sides of the public functions' size switches (a handful of elements takes the interpreter
path, dozens the kernel), so each contract is checked on both paths.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from contract.errors import ConduitError, ErrorCode
from inference_server import kernels

SMALL, LARGE = 3, 200  # element counts on the interpreter and the kernel side of every size switch


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    kernels.warm_up()


def reference_encode(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def _objects(items: Sequence[object]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    for index, item in enumerate(items):  # one by one: a list element must stay one element
        array[index] = item
    return array


def _invalid(call: object, *args: object) -> ConduitError:
    with pytest.raises(ConduitError) as caught:
        call(*args)  # type: ignore[operator]
    assert caught.value.code == ErrorCode.INVALID_ARGUMENT
    return caught.value


# --- BYTES round trips ----------------------------------------------------------------------------------------


ROUND_TRIPS: dict[str, list[bytes] | list[str]] = {
    "zero elements": [],
    "one empty": [b""],
    "empty strings": [b"", b"", b"x", b""] * 50,
    "non-ascii": ["héllo wörld", "漢字", "😀", "плохо"] * 50,
    "big elements": [bytes(range(256)) * 4096, b"", b"\x00" * 70_000] * 5,
    "binary with trailing NULs": [b"a\x00", b"\x00\x00", b"\xff\x00\x01"] * 50,
}


@pytest.mark.parametrize("count", [1, SMALL, 11, 12, 47, 48, LARGE, 5000])
def test_round_trip_every_size(count: int) -> None:
    rng = np.random.default_rng(count)
    items = [rng.bytes(int(n)) for n in rng.integers(0, 40, count)]
    encoded = kernels.encode_bytes(_objects(items))
    assert encoded == reference_encode(items)
    decoded = kernels.decode_bytes(encoded, count)
    assert decoded.dtype == object and decoded.shape == (count,)
    assert decoded.tolist() == items
    assert all(type(item) is bytes for item in decoded)


@pytest.mark.parametrize("name", ROUND_TRIPS)
def test_round_trip(name: str) -> None:
    values = ROUND_TRIPS[name]
    as_bytes = [v.encode() if isinstance(v, str) else v for v in values]
    encoded = kernels.encode_bytes(_objects(values))
    assert encoded == reference_encode(as_bytes)
    assert kernels.decode_bytes(encoded, len(values)).tolist() == as_bytes


@pytest.mark.parametrize("count", [SMALL, LARGE])
def test_decode_accepts_memoryview_and_bytearray(count: int) -> None:
    items = [b"ab", b"", "é".encode()] * count
    encoded = reference_encode(items)
    framed = b"junk" + encoded + b"junk"
    view = memoryview(framed)[4:-4]
    assert kernels.decode_bytes(view, len(items)).tolist() == items
    decoded = kernels.decode_bytes(memoryview(bytearray(encoded)), len(items))
    assert decoded.tolist() == items and all(type(item) is bytes for item in decoded)


@pytest.mark.parametrize("count", [SMALL, LARGE])
def test_encode_flattens_any_shape_in_c_order(count: int) -> None:
    items = [f"item {i}".encode() for i in range(2 * count)]
    grid = _objects(list(items)).reshape(2, count)
    assert kernels.encode_bytes(grid) == reference_encode(items)
    assert kernels.encode_bytes(grid.T) == reference_encode(grid.T.reshape(-1).tolist())


@pytest.mark.parametrize("count", [SMALL, LARGE])
def test_encode_mixes_bytes_str_and_bytes_like(count: int) -> None:
    values = [b"raw", "text", "tëxt", bytearray(b"ba"), np.bytes_(b"np"), np.str_("ns")] * count
    expected = reference_encode([b"raw", b"text", "tëxt".encode(), b"ba", b"np", b"ns"] * count)
    assert kernels.encode_bytes(_objects(values)) == expected


@pytest.mark.parametrize("count", [SMALL, LARGE])
def test_encode_takes_bytes_like_elements_as_their_raw_bytes(count: int) -> None:
    block = np.arange(6, dtype=np.uint16).reshape(2, 3)  # len() 2, 12 bytes
    values = [block, memoryview(b"mv")] * count
    assert kernels.encode_bytes(_objects(values)) == reference_encode([block.tobytes(), b"mv"] * count)


@pytest.mark.parametrize("count", [1, SMALL, 9, 10, LARGE])
@pytest.mark.parametrize("kind", ["S", "U"])
def test_encode_numpy_fixed_width(kind: str, count: int) -> None:
    words = ["", "a", "héllo", "漢字", "x" * 40, "😀 emoji"]
    texts = [words[i % len(words)] for i in range(count)]
    if kind == "S":
        values = np.array([t.encode() for t in texts], dtype=f"S{max(len(t.encode()) for t in texts) + 3}")
    else:
        values = np.array(texts, dtype=f"U{max(len(t) for t in texts) + 3}")
    expected = reference_encode([t.encode() for t in texts])
    assert kernels.encode_bytes(values) == expected
    assert kernels.encode_bytes(values.reshape(1, count)) == expected
    assert kernels.encode_bytes(values[::-1]) == reference_encode([t.encode() for t in reversed(texts)])


@pytest.mark.parametrize("count", [SMALL, LARGE])
def test_encode_fixed_width_drops_trailing_nuls_like_numpy(count: int) -> None:
    values = np.array([b"a\x00b\x00\x00", b"\x00\x00"] * count, dtype="S6")
    assert kernels.encode_bytes(values) == reference_encode(values.tolist())
    assert kernels.encode_bytes(values)[:11] == b"\x03\x00\x00\x00a\x00b\x00\x00\x00\x00"


@pytest.mark.parametrize("count", [SMALL, LARGE])
def test_encode_big_endian_unicode(count: int) -> None:
    values = np.array(["héllo", "漢"] * count, dtype=">U5")
    assert kernels.encode_bytes(values) == reference_encode(["héllo".encode(), "漢".encode()] * count)


def test_decode_returns_independent_bytes() -> None:
    buffer = bytearray(reference_encode([b"abc"] * LARGE))
    decoded = kernels.decode_bytes(buffer, LARGE)
    buffer[4:7] = b"zzz"
    assert decoded[0] == b"abc"


# --- BYTES errors ---------------------------------------------------------------------------------------------


def _good(count: int) -> bytes:
    return reference_encode([b"element"] * count)


@pytest.mark.parametrize("count", [SMALL, LARGE])
def test_decode_rejects_truncated_length_prefix(count: int) -> None:
    _invalid(kernels.decode_bytes, _good(count) + b"\x05\x00", count + 1)


@pytest.mark.parametrize("count", [SMALL, LARGE])
def test_decode_rejects_length_past_the_end(count: int) -> None:
    buffer = _good(count - 1) + struct.pack("<I", 8) + b"1234567"
    _invalid(kernels.decode_bytes, buffer, count)
    _invalid(kernels.decode_bytes, _good(count - 1) + b"\xff\xff\xff\xff" + b"x" * 64, count)


@pytest.mark.parametrize("count", [SMALL, LARGE])
def test_decode_rejects_trailing_bytes(count: int) -> None:
    _invalid(kernels.decode_bytes, _good(count) + b"\x00", count)
    _invalid(kernels.decode_bytes, _good(count) + struct.pack("<I", 0), count)


@pytest.mark.parametrize("count", [SMALL, LARGE])
def test_decode_rejects_fewer_elements_than_count(count: int) -> None:
    # Enough bytes that count * 4 fits: the scan itself must notice the buffer ends after count - 1 elements.
    buffer = reference_encode([b"x" * 32] * (count - 1))
    assert len(buffer) // 4 >= count
    _invalid(kernels.decode_bytes, buffer, count)


def test_decode_rejects_counts_the_buffer_cannot_hold_before_allocating() -> None:
    _invalid(kernels.decode_bytes, _good(2), 10**15)  # would be petabytes of offsets if allocated
    _invalid(kernels.decode_bytes, b"", 1)
    _invalid(kernels.decode_bytes, _good(2), -1)


def test_decode_zero_elements() -> None:
    assert kernels.decode_bytes(b"", 0).shape == (0,)
    _invalid(kernels.decode_bytes, b"\x00\x00\x00\x00", 0)


@pytest.mark.parametrize("count", [SMALL, LARGE])
@pytest.mark.parametrize("bad", [7, None, 1.5, ["list"]])
def test_encode_rejects_elements_that_are_not_bytes_or_str(bad: object, count: int) -> None:
    _invalid(kernels.encode_bytes, _objects([b"ok"] * (count - 1) + [bad]))
    _invalid(kernels.encode_bytes, _objects(["ok"] * (count - 1) + [bad]))


@pytest.mark.parametrize("count", [SMALL, LARGE])
def test_encode_rejects_strings_utf8_cannot_encode(count: int) -> None:
    lone_surrogate = "bad \ud800"
    _invalid(kernels.encode_bytes, _objects(["ok"] * (count - 1) + [lone_surrogate]))
    _invalid(kernels.encode_bytes, _objects(["ök"] * (count - 1) + [lone_surrogate]))
    _invalid(kernels.encode_bytes, _objects([b"ok"] * (count - 1) + [lone_surrogate]))
    _invalid(kernels.encode_bytes, np.array(["ok"] * (count - 1) + [lone_surrogate]))


def test_encode_rejects_non_text_arrays() -> None:
    _invalid(kernels.encode_bytes, np.zeros(4, dtype=np.float32))


# --- checked casts --------------------------------------------------------------------------------------------

NARROW = [
    (source, target) for source in (np.int32, np.int64) for target in (np.int8, np.int16, np.uint8, np.uint16)
] + [(source, target) for source in (np.uint32, np.uint64) for target in (np.int8, np.int16, np.uint8, np.uint16)]


@pytest.mark.parametrize(("source", "target"), NARROW)
@pytest.mark.parametrize("count", [1, 64, 5000])
def test_cast_keeps_every_value_in_range(source: type, target: type, count: int) -> None:
    info = np.iinfo(target)
    low = max(int(info.min), int(np.iinfo(source).min))
    rng = np.random.default_rng(count)
    values: np.ndarray = rng.integers(low, int(info.max), count, endpoint=True).astype(source)
    values[0] = low
    values[-1] = info.max
    cast = kernels.cast_checked(values, np.dtype(target))
    assert cast.dtype == np.dtype(target)
    assert np.array_equal(cast.astype(np.int64), values.astype(np.int64))


@pytest.mark.parametrize(
    ("target", "fits", "does_not_fit"),
    [
        (np.int8, [-128, 127], [128, -129]),
        (np.int16, [-32768, 32767], [32768, -32769]),
        (np.uint8, [0, 255], [256, -1]),
        (np.uint16, [0, 65535], [65536, -1]),
        (np.int32, [-(2**31), 2**31 - 1], [2**31, -(2**31) - 1]),  # not a kernel pair: the numpy path
    ],
)
@pytest.mark.parametrize("count", [1, 64])
def test_cast_boundaries(target: type, fits: list[int], does_not_fit: list[int], count: int) -> None:
    dtype = np.dtype(target)
    for source in (np.int64, np.int32):
        for value in fits:
            if np.iinfo(source).min <= value <= np.iinfo(source).max:
                values = np.full(count, value, dtype=source)
                assert kernels.cast_checked(values, dtype).tolist() == [value] * count
        for value in does_not_fit:
            if np.iinfo(source).min <= value <= np.iinfo(source).max:
                values = np.zeros(count, dtype=source)
                values[-1] = value
                _invalid(kernels.cast_checked, values, dtype)


@pytest.mark.parametrize("source", [np.uint32, np.uint64])
def test_cast_unsigned_sources(source: type) -> None:
    assert kernels.cast_checked(np.array([0, 65535], dtype=source), np.dtype(np.uint16)).tolist() == [0, 65535]
    _invalid(kernels.cast_checked, np.array([0, 65536], dtype=source), np.dtype(np.uint16))
    _invalid(kernels.cast_checked, np.array([128], dtype=source), np.dtype(np.int8))
    _invalid(kernels.cast_checked, np.array([np.iinfo(source).max], dtype=source), np.dtype(np.uint8))


def test_cast_keeps_shape_and_accepts_read_only_and_strided_inputs() -> None:
    grid = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    assert kernels.cast_checked(grid, np.dtype(np.int8)).tolist() == grid.tolist()
    frozen = np.frombuffer(np.arange(10, dtype=np.int64).tobytes(), dtype=np.int64)
    assert kernels.cast_checked(frozen, np.dtype(np.uint8)).tolist() == list(range(10))
    assert not frozen.flags.writeable
    writable = np.arange(10, dtype=np.int64)
    kernels.cast_checked(writable, np.dtype(np.int16))
    assert writable.flags.writeable  # the caller's array keeps its flags
    assert kernels.cast_checked(writable[::3], np.dtype(np.int8)).tolist() == [0, 3, 6, 9]
    assert kernels.cast_checked(grid.T, np.dtype(np.int16)).tolist() == grid.T.tolist()


def test_cast_to_floats_never_raises_and_keeps_nan() -> None:
    values = np.array([1.5, np.nan, 1e6, -np.inf, 65504.0], dtype=np.float32)
    half = kernels.cast_checked(values, np.dtype(np.float16))
    assert half.dtype == np.float16
    assert np.isnan(half[1]) and np.isinf(half[2]) and half[4] == 65504.0
    assert kernels.cast_checked(np.array([1e300]), np.dtype(np.float32))[0] == np.inf


def test_cast_floats_to_integers_refuses_nan_and_out_of_range() -> None:
    assert kernels.cast_checked(np.array([1.0, -128.0]), np.dtype(np.int8)).tolist() == [1, -128]
    _invalid(kernels.cast_checked, np.array([1.0, np.nan]), np.dtype(np.int8))
    _invalid(kernels.cast_checked, np.array([300.0]), np.dtype(np.uint8))


def test_cast_same_dtype_is_the_array_itself() -> None:
    values = np.arange(4, dtype=np.int16)
    assert kernels.cast_checked(values, np.dtype(np.int16)) is values


def test_cast_refuses_non_numeric_targets() -> None:
    with pytest.raises(TypeError):
        kernels.cast_checked(np.arange(3), np.dtype(object))


# --- histogram sketches ---------------------------------------------------------------------------------------


def reference_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    bins = edges.shape[1] - 1
    counts = np.zeros((edges.shape[0], bins + 3), dtype=np.int64)
    for feature in range(edges.shape[0]):
        column = values[:, feature].astype(np.float64)
        finite = column[~np.isnan(column)]
        inside = finite[(finite >= edges[feature, 0]) & (finite <= edges[feature, -1])]
        # The profile's rule: [e0, e1], then (e[i], e[i+1]].
        slots = np.maximum(np.searchsorted(edges[feature], inside, side="left") - 1, 0)
        counts[feature, :bins] = np.bincount(slots, minlength=bins)[:bins]
        counts[feature, bins] = np.count_nonzero(finite < edges[feature, 0])
        counts[feature, bins + 1] = np.count_nonzero(finite > edges[feature, -1])
        counts[feature, bins + 2] = np.count_nonzero(np.isnan(column))
    return counts


def _batch(rng: np.random.Generator, rows: int, features: int, dtype: type) -> np.ndarray:
    values: np.ndarray = rng.normal(scale=2.0, size=(rows, features)).astype(dtype)
    values[rng.random(values.shape) < 0.1] = np.nan
    values[rng.random(values.shape) < 0.02] = np.inf
    values[rng.random(values.shape) < 0.02] = -np.inf
    return values


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("rows", "bins"), [(1, 10), (64, 10), (4096, 10), (300, 1), (300, 600)])
def test_histogram_matches_numpy(dtype: type, rows: int, bins: int) -> None:
    rng = np.random.default_rng(rows * bins)
    features = 7
    edges = np.sort(rng.normal(size=(features, bins + 1)), axis=1)
    values = _batch(rng, rows, features, dtype)
    values[0, 0] = edges[0, 0]  # on the bottom edge: first bin
    values[-1, -1] = edges[-1, -1]  # on the top edge: last bin
    values[1 % rows, 1] = edges[1, 1]  # on an inner edge: the bin it closes
    counts = np.zeros((features, bins + 3), dtype=np.int64)
    kernels.histogram_counts(values, edges, counts)
    assert np.array_equal(counts, reference_counts(values, edges))
    assert counts.sum() == values.size


def test_histogram_values_on_edges_and_repeated_edges() -> None:
    edges = np.array([[0.0, 1.0, 1.0, 2.0, 3.0], [-1.0, 0.0, 0.5, 0.5, 0.5]])
    values = np.array([[x, x - 1.0] for x in np.arange(-1.0, 4.5, 0.5)])
    counts = np.zeros((2, 7), dtype=np.int64)
    kernels.histogram_counts(values, edges, counts)
    assert np.array_equal(counts, reference_counts(values, edges))


def test_histogram_accumulates_and_tables_merge_by_addition() -> None:
    rng = np.random.default_rng(7)
    edges = [np.linspace(-2, 2, 6), np.linspace(0, 1, 6), np.linspace(-5, 5, 6)]  # a list of per-feature edges
    first, second = _batch(rng, 50, 3, np.float32), _batch(rng, 80, 3, np.float32)
    together = np.zeros((3, 8), dtype=np.int64)
    kernels.histogram_counts(first, edges, together)
    kernels.histogram_counts(second, edges, together)
    separate = np.zeros_like(together)
    kernels.histogram_counts(np.concatenate([first, second]), np.array(edges), separate)
    assert np.array_equal(together, separate)
    assert np.array_equal(together, reference_counts(np.concatenate([first, second]), np.array(edges)))


def test_histogram_converts_integer_and_strided_values() -> None:
    values = np.arange(40, dtype=np.int64).reshape(10, 4)
    edges = np.tile(np.array([0.0, 10.0, 20.0, 30.0]), (2, 1))
    counts = np.zeros((2, 6), dtype=np.int64)
    kernels.histogram_counts(values[:, ::2], edges, counts)
    assert np.array_equal(counts, reference_counts(values[:, ::2].astype(np.float64), edges))


def test_histogram_refuses_bad_edges_and_shapes_without_counting() -> None:
    values = np.zeros((4, 2))
    counts = np.zeros((2, 6), dtype=np.int64)
    for edges in ([[0, 1, 2, 3], [0, 2, 1, 3]], [[0, 1, 2, 3], [0, np.nan, 2, 3]]):
        with pytest.raises(ValueError):
            kernels.histogram_counts(values, np.array(edges, dtype=float), counts)
        assert not counts.any()
    with pytest.raises(ValueError):
        kernels.histogram_counts(values, np.zeros((3, 4)), counts)  # 3 features of edges, 2 of values
    with pytest.raises(ValueError):
        kernels.histogram_counts(values, np.array([[0.0, 1.0, 2.0]] * 2), counts)  # counts for 3 bins, edges for 2
    with pytest.raises(ValueError):
        kernels.histogram_counts(values, np.array([[0.0, 1.0, 2.0, 3.0]] * 2), counts.astype(np.int32))
    with pytest.raises(ValueError):
        kernels.histogram_counts(values[0], np.array([[0.0, 1.0, 2.0, 3.0]] * 2), counts)


# --- warm-up and numba's cache --------------------------------------------------------------------------------

# Every kind of argument the public functions meet, so that any type warm_up did not compile shows up as a compile.
_EXERCISE = textwrap.dedent(
    """
    import json, struct, sys
    import numpy as np
    from numba.core import event
    from inference_server import kernels

    with event.install_recorder("numba:compile") as warm:
        kernels.warm_up()
    with event.install_recorder("numba:compile") as serving:
        items = [b"abc", b""] * 40
        buffer = b"".join(struct.pack("<I", len(v)) + v for v in items)
        for data in (buffer, memoryview(buffer), bytearray(buffer), memoryview(bytearray(buffer))):
            kernels.decode_bytes(data, len(items))
        for values in (items, ["abc", "d"] * 40, ["é", "d"] * 40, [b"a", "é"] * 40):
            array = np.empty(len(values), dtype=object)
            array[:] = values
            kernels.encode_bytes(array)
            kernels.encode_bytes(array.reshape(2, -1).T)
        for array in (np.array([b"ab", b"c"] * 20), np.array(["ab", "é"] * 20), np.array(["ab"] * 40, dtype=">U2")):
            kernels.encode_bytes(array)
            kernels.encode_bytes(array[::2])
        for source in (np.int32, np.int64, np.uint32, np.uint64):
            for target in (np.int8, np.int16, np.uint8, np.uint16):
                values = np.arange(64, dtype=source)
                kernels.cast_checked(values, np.dtype(target))
                kernels.cast_checked(values[::2], np.dtype(target))
                kernels.cast_checked(np.frombuffer(values.tobytes(), dtype=source), np.dtype(target))
        edges = np.tile(np.linspace(0, 1, 11), (3, 1))
        for dtype in (np.float32, np.float64, np.int64):
            values = np.ones((8, 3), dtype=dtype)
            counts = np.zeros((3, 13), dtype=np.int64)
            kernels.histogram_counts(values, edges, counts)
            kernels.histogram_counts(np.frombuffer(values.tobytes(), dtype=dtype).reshape(8, 3), edges.tolist(), counts)
    json.dump({"warm_up_compiles": len(warm.buffer) // 2, "serving_compiles": len(serving.buffer) // 2}, sys.stdout)
    """
)


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=600, check=True
    )


def test_warm_up_compiles_everything_once_and_later_starts_load_from_cache(tmp_path: Path) -> None:
    # A cache directory of its own, so the first process really compiles whatever earlier runs left in the tree.
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    cold = json.loads(_run(_EXERCISE, env).stdout)
    assert cold["warm_up_compiles"] > 0
    assert cold["serving_compiles"] == 0, "a public function met a type warm_up() did not compile"
    assert any((tmp_path / "numba").rglob("*.nbi"))
    warm = json.loads(_run(_EXERCISE, env).stdout)
    assert warm == {"warm_up_compiles": 0, "serving_compiles": 0}


def test_kernels_work_without_any_writable_cache_directory() -> None:
    # Only the NUMBA_CACHE_DIR locator, pointed where nothing can be created: numba finds no cache directory.
    env = {"NUMBA_CACHE_LOCATOR_CLASSES": "UserProvidedCacheLocator", "NUMBA_CACHE_DIR": "/proc/conduit-no-cache"}
    code = "from inference_server import kernels; print(kernels.cast_checked(__import__('numpy').arange(3), 'int8'))"
    result = _run(code, env)
    assert result.stdout.strip() == "[0 1 2]"
    assert "no writable numba cache directory" in result.stderr
