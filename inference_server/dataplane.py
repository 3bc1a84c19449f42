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
from inference_server.validation import check_categories, select_outputs, validate_inputs

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

    async def infer(self, request: InferRequest, *, burst: bool = False) -> InferResponse:
        """Validate ``request``, queue it on its version's batcher and answer with the requested outputs.

        ``burst``: other requests arrived with this one (a transport that receives them together says so), and
        it waits for them to batch together rather than run alone at once.

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
            spec, known = served.spec, served.known_categories
            wanted: list[int] = []

            def prepare() -> tuple[dict[str, np.ndarray], int]:
                nonlocal wanted
                prepared = validate_inputs(spec, request.inputs)
                if known is not None:
                    check_categories(spec, known, prepared[0])
                wanted = select_outputs(spec, request.outputs)
                return prepared

            deadline = arrival + int(request.timeout_s * 1e9) if request.timeout_s is not None else None
            # The batcher counts the request and records its outcome, whatever it is: one place for all of it.
            outputs = await served.batcher.infer(prepare, arrival_ns=arrival, deadline_ns=deadline, burst=burst)
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
