"""The asyncio client (grpc.aio); same methods as the blocking one, as coroutines."""

# `timeout` here is a gRPC deadline: it travels to the server, which drops expired requests before computing them.
# asyncio.timeout() would only stop waiting on this side, so ASYNC109's advice does not apply.
# ruff: noqa: ASYNC109

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc
from numpy.typing import NDArray

from clients._channel import (
    DEFAULT_MAX_MESSAGE_BYTES,
    Balance,
    Target,
    channel_authority,
    channel_options,
    channel_target,
    error_from_rpc,
)
from clients._codec import ParameterInput, decode_infer_response, decode_stream_response, encode_infer_request
from clients._conform import Inputs, SignatureCache, conform_inputs, signature_of
from clients._result import InferResult
from clients._tls import bearer_metadata
from contract.entities import TensorSignature
from contract.errors import ConduitError, ErrorCode
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from inference_server.protocol import model_config_pb2 as mc

Request = TypeVar("Request")
Response = TypeVar("Response")

__all__ = ["AsyncInferenceClient"]

_T = TypeVar("_T")


class AsyncInferenceClient:
    """asyncio client of an Open Inference Protocol (KServe v2) gRPC server: numpy in, numpy out.

    Every failure is raised as a ``ConduitError`` whose code follows the gRPC status. Create it inside a running
    event loop (the channel binds to it); use it as an async context manager or ``await close()``.

    Args:
        target: Server address, e.g. ``"localhost:8001"``, any gRPC target (``"dns:///conduit:8001"``), or a list
            of addresses, balanced over (``round_robin`` unless ``balance`` says otherwise).
        timeout: Default deadline of each call, in seconds; ``None`` waits for as long as it takes.
        max_message_bytes: Largest message sent or received (``-1`` for no limit).
        options: Extra gRPC channel arguments; they override the ones derived from ``max_message_bytes``.
        credentials: TLS credentials (``tls_credentials(...)`` builds them from PEM files); ``None`` opens a
            plaintext channel.
        metadata: Headers sent with every call.
        token: Bearer token, sent with every call as ``authorization: Bearer <token>``.
        balance: Load-balancing policy over the addresses ``target`` stands for: ``round_robin`` (the default for a
            list and a ``dns:`` target) or ``pick_first``. Either way a call that fails UNAVAILABLE (a server gone
            or draining) is tried again, up to 4 attempts; a single address without ``balance`` keeps gRPC's
            defaults.

    Raises:
        ValueError: an empty ``token``, a ``token`` together with an ``authorization`` header in ``metadata``, or a
            ``target`` list that is empty or holds an address that is not ``host:port``.
    """

    def __init__(
        self,
        target: Target,
        *,
        timeout: float | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        options: Sequence[tuple[str, Any]] = (),
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        token: str | None = None,
        balance: Balance | None = None,
    ) -> None:
        headers = bearer_metadata(token, metadata)
        address, policy = channel_target(target, balance)
        merged = channel_options(max_message_bytes, options, policy, authority=channel_authority(target))
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(address, options=merged)
        else:
            self._channel = grpc.aio.secure_channel(address, credentials, options=merged)
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        self._timeout = timeout
        self._metadata = headers or None
        self._signatures = SignatureCache()

    async def __aenter__(self) -> AsyncInferenceClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self, grace: float | None = None) -> None:
        """Close the channel, letting calls in flight finish for ``grace`` seconds (``None``: cancel them now)."""
        await self._channel.close(grace)

    async def _call(
        self,
        name: str,
        call: grpc.aio.UnaryUnaryMultiCallable[Request, Response],
        request: Request,
        timeout: float | None,
    ) -> Response:
        try:
            return await call(request, timeout=self._timeout if timeout is None else timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise error_from_rpc(name, error) from error

    async def server_live(self, *, timeout: float | None = None) -> bool:
        """Whether the server process is up."""
        response = await self._call("ServerLive", self._stub.ServerLive, pb.ServerLiveRequest(), timeout)
        return response.live

    async def server_ready(self, *, timeout: float | None = None) -> bool:
        """Whether the server is ready to serve its models."""
        response = await self._call("ServerReady", self._stub.ServerReady, pb.ServerReadyRequest(), timeout)
        return response.ready

    async def model_ready(self, name: str, version: str = "", *, timeout: float | None = None) -> bool:
        """Whether a model (its default version when ``version`` is empty) is ready for inference."""
        request = pb.ModelReadyRequest(name=name, version=version)
        response = await self._call("ModelReady", self._stub.ModelReady, request, timeout)
        return response.ready

    async def server_metadata(self, *, timeout: float | None = None) -> pb.ServerMetadataResponse:
        """Server name, version and protocol extensions."""
        response = await self._call("ServerMetadata", self._stub.ServerMetadata, pb.ServerMetadataRequest(), timeout)
        return response

    async def model_metadata(
        self, name: str, version: str = "", *, timeout: float | None = None
    ) -> pb.ModelMetadataResponse:
        """A model's versions, platform, and input and output tensors."""
        request = pb.ModelMetadataRequest(name=name, version=version)
        response = await self._call("ModelMetadata", self._stub.ModelMetadata, request, timeout)
        return response

    async def model_config(self, name: str, version: str = "", *, timeout: float | None = None) -> mc.ModelConfig:
        """A model's configuration in Triton's schema."""
        request = pb.ModelConfigRequest(name=name, version=version)
        response = await self._call("ModelConfig", self._stub.ModelConfig, request, timeout)
        return response.config

    async def model_statistics(
        self, name: str = "", version: str = "", *, timeout: float | None = None
    ) -> list[pb.ModelStatistics]:
        """Inference statistics of one model, or of every model when ``name`` is empty."""
        request = pb.ModelStatisticsRequest(name=name, version=version)
        response = await self._call("ModelStatistics", self._stub.ModelStatistics, request, timeout)
        return list(response.model_stats)

    async def repository_index(
        self, ready: bool = False, *, timeout: float | None = None
    ) -> list[pb.RepositoryIndexResponse.ModelIndex]:
        """The models in the server's repository (only the ready ones when ``ready``)."""
        request = pb.RepositoryIndexRequest(ready=ready)
        response = await self._call("RepositoryIndex", self._stub.RepositoryIndex, request, timeout)
        return list(response.models)

    async def load_model(self, name: str, *, timeout: float | None = None) -> None:
        """Load (or reload) a model from the server's repository."""
        await self._call(
            "RepositoryModelLoad",
            self._stub.RepositoryModelLoad,
            pb.RepositoryModelLoadRequest(model_name=name),
            timeout,
        )

    async def unload_model(self, name: str, *, timeout: float | None = None) -> None:
        """Unload a model; in-flight requests finish first."""
        await self._call(
            "RepositoryModelUnload",
            self._stub.RepositoryModelUnload,
            pb.RepositoryModelUnloadRequest(model_name=name),
            timeout,
        )

    async def infer(
        self,
        model: str,
        inputs: Inputs,
        *,
        version: str = "",
        outputs: Sequence[str] | None = None,
        request_id: str = "",
        timeout: float | None = None,
        raw: bool = True,
        parameters: Mapping[str, ParameterInput] | None = None,
        cast: bool = True,
    ) -> InferResult:
        """Run one inference request.

        Args:
            model: Model name.
            inputs: Input tensors by name (str, bytes and object arrays are sent as BYTES), or a pandas or polars
                DataFrame: one column per input, by name, or the columns of a model's single 2-D input.
            version: Model version; empty for the server's choice.
            outputs: Outputs to return; ``None`` for all of them.
            request_id: Echoed back as ``InferResult.id``.
            timeout: Deadline in seconds; ``None`` for the client's default.
            raw: Send raw contents (fast); ``False`` sends typed contents (a request with FP16 inputs stays raw).
            parameters: Request parameters.
            cast: Cast arrays to the datatypes the model declares when their values fit (float64 to FP32, …), from
                its metadata, read once per model and version; ``False`` sends arrays as they are (a DataFrame is
                always mapped and cast).

        Raises:
            ConduitError: INVALID_ARGUMENT for inputs that cannot be encoded or cast, or the server's error.
        """
        arrays = await self._conform(model, version, inputs, cast, timeout)
        request = encode_infer_request(
            model, arrays, version=version, outputs=outputs, request_id=request_id, raw=raw, parameters=parameters
        )
        try:
            response = await self._call("ModelInfer", self._stub.ModelInfer, request, timeout)
        except ConduitError as error:
            if error.code is ErrorCode.INVALID_ARGUMENT:
                # The cached declaration may be a previous version's: read it again next time.
                self._signatures.forget(model, version)
            raise
        return decode_infer_response(response)

    async def _signature(self, model: str, version: str, timeout: float | None) -> tuple[TensorSignature, ...]:
        """The model's declared inputs, from its metadata, cached per model and version."""
        signature = self._signatures.get(model, version)
        if signature is None:
            signature = signature_of(await self.model_metadata(model, version, timeout=timeout))
            self._signatures.put(model, version, signature)
        return signature

    async def _conform(
        self, model: str, version: str, inputs: Inputs, cast: bool, timeout: float | None
    ) -> Mapping[str, NDArray[Any]]:
        if isinstance(inputs, Mapping) and not cast:
            return inputs
        try:
            signature = await self._signature(model, version, timeout)
        except ConduitError:
            if isinstance(inputs, Mapping):
                return inputs  # sent as they are: the server answers why it cannot serve them (unknown model, …)
            raise
        return conform_inputs(model, inputs, signature)

    async def stream_infer(
        self,
        model: str,
        requests: AsyncIterable[Inputs] | Iterable[Inputs],
        *,
        version: str = "",
        outputs: Sequence[str] | None = None,
        timeout: float | None = None,
        raw: bool = True,
        parameters: Mapping[str, ParameterInput] | None = None,
        cast: bool = True,
    ) -> AsyncIterator[InferResult | ConduitError]:
        """Send many requests over one ModelStreamInfer stream; yield one item per answer, as answers arrive.

        An async generator: use ``async for``. Request ``i`` of ``requests`` is sent with id ``str(i)``, so
        ``InferResult.id`` says which request a result answers. A request the server rejects does not end the
        stream: it is yielded as a ``ConduitError`` (with the code a Conduit server writes into the message,
        INVALID_ARGUMENT from other servers; INTERNAL for an answer that cannot be decoded). ``requests`` is read
        lazily, while answers come back; a plain iterable is read on the event loop, so it must not block.
        ``timeout`` bounds the whole stream; the other arguments apply to every request (``cast`` as ``infer``
        casts, the model's metadata read once for the stream).

        Raises:
            ConduitError: when the stream itself fails (deadline, connection, server error), or what encoding a
                request raised, after the answers to the requests sent before it.
        """
        failures: list[Exception] = []

        async def messages() -> AsyncIterator[pb.ModelInferRequest]:
            # grpc.aio reads this in its own task and turns an exception into a bare CANCELLED status: keep it, end
            # the request stream cleanly so earlier requests are still answered, and raise it to the caller.
            try:
                position = 0
                async for inputs in _each(requests):
                    arrays = await self._conform(model, version, inputs, cast, deadline)
                    yield encode_infer_request(
                        model,
                        arrays,
                        version=version,
                        outputs=outputs,
                        request_id=str(position),
                        raw=raw,
                        parameters=parameters,
                    )
                    position += 1
            except Exception as error:
                failures.append(error)

        deadline = self._timeout if timeout is None else timeout
        call = self._stub.ModelStreamInfer(messages(), timeout=deadline, metadata=self._metadata)
        try:
            async for response in call:
                yield decode_stream_response(response)
        except grpc.RpcError as error:
            if failures:
                raise failures[0] from error
            raise error_from_rpc("ModelStreamInfer", error) from error
        finally:
            # Ends the call when the caller stops iterating early; a no-op once the stream has finished.
            call.cancel()
        if failures:
            raise failures[0]


async def _each(items: AsyncIterable[_T] | Iterable[_T]) -> AsyncIterator[_T]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
