"""onnxruntime execution of one model version; what it accepts and answers is described by its ``ModelSpec``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from contract.datatypes import numpy_dtype, onnx_type_to_datatype
from contract.entities import TensorSignature
from contract.errors import ConduitError, ErrorCode
from inference_server.config import DEFAULT_MAX_BATCH_SIZE, ModelConfig, TensorOverride
from inference_server.spec import ModelSpec

__all__ = ["OnnxModel"]


def _dims(shape: list[int | str | None]) -> tuple[int, ...]:
    # Symbolic ("N", "batch") and unknown dimensions are variable.
    return tuple(d if isinstance(d, int) and d >= 0 else -1 for d in shape)


def _apply(
    graph: list[ort.NodeArg], overrides: list[TensorOverride], batched: bool, kind: str
) -> tuple[TensorSignature, ...]:
    by_name = {o.name: o for o in overrides}
    unknown = set(by_name) - {arg.name for arg in graph}
    if unknown:
        raise ConduitError(
            ErrorCode.FAILED_PRECONDITION, f"config.json names {kind}s not in the graph: {sorted(unknown)}"
        )
    specs = []
    for arg in graph:
        datatype = onnx_type_to_datatype(arg.type)
        dims = _dims(arg.shape)
        if batched:
            dims = dims[1:]
        override = by_name.get(arg.name)
        if override is not None:
            if override.datatype is not None and override.datatype != datatype:
                raise ConduitError(
                    ErrorCode.FAILED_PRECONDITION,
                    f"config.json gives {kind} {arg.name!r} datatype {override.datatype}, the graph has {datatype}",
                )
            if override.dims is not None:
                if len(override.dims) != len(dims):
                    raise ConduitError(
                        ErrorCode.FAILED_PRECONDITION,
                        f"config.json gives {kind} {arg.name!r} dims {override.dims}, the graph has rank {len(dims)}",
                    )
                dims = tuple(override.dims)
        specs.append(TensorSignature(arg.name, datatype, dims))
    return tuple(specs)


class OnnxModel:
    """An onnxruntime session for one model version, with its spec.

    ``run`` is called by the batcher, on its executor thread or, for batches cheaper than a thread round trip, on the
    event-loop thread; onnxruntime releases the GIL while it computes.
    """

    def __init__(self, name: str, version: str, path: Path, config: ModelConfig) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = config.intra_op_threads
        options.inter_op_num_threads = config.inter_op_threads
        options.execution_mode = (
            ort.ExecutionMode.ORT_PARALLEL if config.inter_op_threads > 1 else ort.ExecutionMode.ORT_SEQUENTIAL
        )
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning threads burn the cores other workers and the event loop need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own unrelated exception types for bad files
            raise ConduitError(ErrorCode.FAILED_PRECONDITION, f"cannot load {path}: {exc}") from None
        graph_inputs = self._session.get_inputs()
        first_dims = [_dims(arg.shape)[:1] for arg in graph_inputs]
        can_batch = all(dims == (-1,) for dims in first_dims) and bool(graph_inputs)
        max_batch = config.max_batch_size
        if max_batch is None:
            max_batch = DEFAULT_MAX_BATCH_SIZE if can_batch else 0
        elif max_batch > 0 and not can_batch:
            raise ConduitError(
                ErrorCode.FAILED_PRECONDITION,
                f"config.json sets max_batch_size {max_batch} but the first dimension of the inputs is not dynamic",
            )
        batched = max_batch > 0
        self.spec = ModelSpec(
            name=name,
            version=version,
            inputs=_apply(graph_inputs, config.inputs, batched, "input"),
            outputs=_apply(self._session.get_outputs(), config.outputs, batched, "output"),
            # Held once, resolved: the batch size in effect is the configuration's, not a second copy beside it.
            config=config.model_copy(update={"max_batch_size": max_batch}),
        )
        self._output_names = [s.name for s in self.spec.outputs]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run the graph; outputs come back in ``spec.outputs`` order."""
        # String inputs arrive as object arrays of str: the data plane decoded and checked the UTF-8.
        outputs: list[np.ndarray] = self._session.run(self._output_names, feeds)
        return outputs

    def warm_up(self, clock: Callable[[], int], runs: int = 3) -> dict[int, int]:
        """Run the graph at batch 1 and at the largest batch, so the first request pays nothing.

        Args:
            clock: The batcher's clock (monotonic nanoseconds): these timings seed its cost estimates.
            runs: Timed runs per batch size.

        Returns:
            The fastest of ``runs`` timings in nanoseconds, by number of rows: the batcher's first cost estimates.
        """
        sizes = [1, self.spec.max_batch_size] if self.spec.batched else [1]
        timings: dict[int, int] = {}
        for size in sizes:
            feeds = {}
            for spec in self.spec.inputs:
                dims = tuple(1 if d < 0 else d for d in spec.shape)
                shape = (size, *dims) if self.spec.batched else dims
                if spec.datatype == "BYTES":
                    feeds[spec.name] = np.full(shape, "", dtype=object)
                else:
                    feeds[spec.name] = np.zeros(shape, dtype=numpy_dtype(spec.datatype))
            try:
                best = None
                for _ in range(runs):
                    start = clock()
                    self.run(dict(feeds))
                    elapsed = clock() - start
                    best = elapsed if best is None else min(best, elapsed)
                if best is not None:
                    timings[size] = best
            except Exception as exc:  # a graph that cannot run on zeros may still be valid (e.g. index inputs)
                if size <= 1:
                    raise ConduitError(ErrorCode.FAILED_PRECONDITION, f"warm-up run failed: {exc}") from None
        return timings
