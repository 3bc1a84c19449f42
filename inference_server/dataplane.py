"""The data plane: what every transport calls. It validates, routes to the batcher and shapes answers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from contract.errors import ConduitError, ErrorCode
from inference_server.models import ModelManager
from inference_server.predictions import PredictionSampler
from inference_server.spec import ModelSpec
from inference_server.stats import ModelStats
from inference_server.types import IndexEntry, InferRequest, InferResponse, Tensor

__all__ = ["DataPlane", "ModelMetadata", "ServerMetadata"]

EXTENSIONS = ("model_repository", "statistics", "model_configuration")


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    name: str
    version: str
    extensions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    spec: ModelSpec
    versions: list[str]


class DataPlane:
    """Transport-neutral server API over a ``ModelManager``.

    ``clock`` is the server's one monotonic nanosecond clock, the one its batchers use: arrivals and deadlines taken
    here are compared with their timestamps. ``max_inflight_bytes`` bounds the tensor bytes of all requests in
    flight. ``model_control`` says why load and unload are refused (``None``: they change what is served).
    """

    def __init__(
        self,
        models: ModelManager,
        *,
        server_name: str,
        server_version: str,
        clock: Callable[[], int],
        predictions: PredictionSampler | None = None,
        max_inflight_bytes: int = 512 * 1024 * 1024,
        model_control: str | None = None,
    ) -> None:
        self._models = models
        self._max_inflight_bytes = max_inflight_bytes
        self._inflight_bytes = 0
        self._model_control = model_control
        self._predictions = predictions
        self._metadata = ServerMetadata(server_name, server_version, EXTENSIONS)
        self._clock = clock
        self._ready = False

    # -- health ---

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self._ready

    def set_ready(self, ready: bool) -> None:
        """Ready after the first repository load; not ready again once shutdown begins."""
        self._ready = ready

    def model_ready(self, name: str, version: str = "") -> bool:
        try:
            self._models.get(name, version)
        except ConduitError:
            return False
        return True

    # -- metadata ---

    def server_metadata(self) -> ServerMetadata:
        return self._metadata

    def model_metadata(self, name: str, version: str = "") -> ModelMetadata:
        served = self._models.get(name, version)
        return ModelMetadata(served.spec, self._models.versions(name))

    def model_statistics(self, name: str = "", version: str = "") -> list[tuple[ModelSpec, ModelStats]]:
        """Statistics of one version, of every ready version of one model, or of everything served."""
        if name and version:
            served = [self._models.get(name, version)]
        elif name:
            self._models.get(name)  # NOT_FOUND / UNAVAILABLE for a model that is not served
            served = [self._models.get(name, v) for v in self._models.versions(name)]
        else:
            served = list(self._models.served())
        return [(s.spec, s.stats) for s in served]

    def repository_index(self, ready_only: bool = False) -> list[IndexEntry]:
        entries = self._models.index()
        return [e for e in entries if e.state == "READY"] if ready_only else entries

    @property
    def inflight_bytes(self) -> int:
        """Tensor bytes of the requests in flight now."""
        return self._inflight_bytes

    def _check_model_control(self) -> None:
        if self._model_control is not None:
            raise ConduitError(ErrorCode.FAILED_PRECONDITION, self._model_control)

    async def load_model(self, name: str) -> None:
        """Load (or reload) ``name`` from the repository.

        Raises:
            ConduitError: FAILED_PRECONDITION when model control is off; NOT_FOUND, INVALID_ARGUMENT for the model.
        """
        self._check_model_control()
        await self._models.load(name)

    async def unload_model(self, name: str) -> None:
        """Stop serving ``name``, draining its requests in flight.

        Raises:
            ConduitError: FAILED_PRECONDITION when model control is off; NOT_FOUND when it is not served.
        """
        self._check_model_control()
        await self._models.unload(name)

    # -- inference ---

    async def infer(self, request: InferRequest) -> InferResponse:
        """Validate ``request``, queue it on its version's batcher and answer with the requested outputs.

        Raises:
            ConduitError: NOT_FOUND, UNAVAILABLE, INVALID_ARGUMENT, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED or INTERNAL.
        """
        arrival = self._clock()
        served = self._models.get(request.model, request.version)
        size = 0
        for tensor in request.inputs:
            size += tensor.data.nbytes
        if self._inflight_bytes + size > self._max_inflight_bytes:
            raise ConduitError(
                ErrorCode.RESOURCE_EXHAUSTED,
                f"server busy: {size} bytes of inputs would exceed the {self._max_inflight_bytes} bytes of requests "
                "it holds at once; retry later",
            )
        self._inflight_bytes += size
        try:
            spec = served.spec
            wanted: list[int] = []

            def prepare() -> tuple[dict[str, np.ndarray], int]:
                nonlocal wanted
                prepared = _validate(spec, request.inputs)
                wanted = _select_outputs(spec, request.outputs)
                return prepared

            deadline = arrival + int(request.timeout_s * 1e9) if request.timeout_s is not None else None
            # The batcher counts the request and records its outcome, whatever it is: one place for all of it.
            outputs = await served.batcher.infer(prepare, arrival_ns=arrival, deadline_ns=deadline)
        finally:
            self._inflight_bytes -= size
        sampler = self._predictions
        # One draw per answered request; only a sampled one is copied.
        if sampler is not None and sampler.sampled():
            sampler.keep(spec, request.id, request.inputs, outputs)
        spec_outputs = spec.outputs
        return InferResponse(
            model=spec.name,
            version=spec.version,
            id=request.id,
            outputs=[Tensor(spec_outputs[i].name, spec_outputs[i].datatype, outputs[i]) for i in wanted],
            raw_output=request.raw_output,
        )


def _validate(spec: ModelSpec, tensors: list[Tensor]) -> tuple[dict[str, np.ndarray], int]:
    """Check names, datatypes and shapes against the model; return the feeds and the number of rows."""
    by_name = {tensor.name: tensor for tensor in tensors}
    # Almost every request names exactly the model's inputs: only otherwise find out what is wrong.
    if len(tensors) != len(by_name) or len(by_name) != len(spec.inputs):
        _check_names(spec, tensors, by_name)
    feeds: dict[str, np.ndarray] = {}
    rows = 1
    for position, input_spec in enumerate(spec.inputs):
        found = by_name.get(input_spec.name)
        if found is None:
            _check_names(spec, tensors, by_name)  # a misnamed input is reported as unexpected, not just missing
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"missing input {input_spec.name!r} for model {spec.name!r}")
        if found.datatype != input_spec.datatype:
            raise ConduitError(
                ErrorCode.INVALID_ARGUMENT,
                f"input {found.name!r} has datatype {found.datatype}, model {spec.name!r} expects "
                f"{input_spec.datatype}",
            )
        shape = found.data.shape
        dims = shape
        if spec.batched:
            if len(shape) < 1 or shape[0] < 1:
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT, f"input {found.name!r} needs a batch dimension of at least 1"
                )
            if position == 0:
                rows = shape[0]
            elif shape[0] != rows:
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"inputs disagree on the batch size: {spec.inputs[0].name!r} has {rows}, "
                    f"{found.name!r} has {shape[0]}",
                )
            if rows > spec.max_batch_size:
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"batch size {rows} exceeds the maximum {spec.max_batch_size} of model {spec.name!r}",
                )
            dims = shape[1:]
        # Most requests match the declared shape exactly: only a variable (-1) dimension needs the element-wise check.
        if dims != input_spec.shape and (
            len(dims) != len(input_spec.shape)
            or any(want not in (-1, got) for want, got in zip(input_spec.shape, dims, strict=True))
        ):
            raise ConduitError(
                ErrorCode.INVALID_ARGUMENT,
                f"input {found.name!r} has shape {list(shape)}, model {spec.name!r} expects "
                f"{list(spec.shape_of(input_spec))}",
            )
        # BYTES arrive as text already: the transport decoded the UTF-8 once, as the model's string inputs need.
        feeds[input_spec.name] = found.data
    return feeds, rows


def _check_names(spec: ModelSpec, tensors: list[Tensor], by_name: dict[str, Tensor]) -> None:
    """Raise the precise error for duplicate or unexpected inputs (missing ones are reported by ``_validate``)."""
    seen: set[str] = set()
    for tensor in tensors:
        if tensor.name in seen:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"input {tensor.name!r} given twice")
        seen.add(tensor.name)
    expected = {s.name for s in spec.inputs}
    unknown = sorted(set(by_name) - expected)
    if unknown:
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT,
            f"unexpected input {', '.join(map(repr, unknown))} for model {spec.name!r}; it takes {sorted(expected)}",
        )


def _select_outputs(spec: ModelSpec, requested: list[str] | None) -> list[int]:
    """Indices into ``spec.outputs`` of the outputs to answer with, in the order they were asked for."""
    if not requested:
        return list(range(len(spec.outputs)))
    index = spec.output_index
    wanted = []
    for name in requested:
        position = index.get(name)
        if position is None:
            raise ConduitError(
                ErrorCode.INVALID_ARGUMENT,
                f"unknown output {name!r} for model {spec.name!r}; it has {sorted(index)}",
            )
        wanted.append(position)
    return wanted
