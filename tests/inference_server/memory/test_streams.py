"""ModelStreamInfer holds bounded memory: a long stream read as it goes stays flat, and a stream whose client never
reads its answers holds little more than its window, because the server stops reading it and gRPC flow control
pushes back on the client.

Before the window, 200 requests of 1 MiB on a stream whose answers nobody read took a server from 429 to 699 MiB.
The negative control gives a stream a window larger than all it sends, and must show that growth again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import numpy as np
import pytest

from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from tests.conftest import identity_model
from tests.inference_server.conftest import Connect
from trainers.onnx_export import write_model_version

from .conftest import CALL_TIMEOUT_S, MIB, StartMeasured

Stub = pb_grpc.GRPCInferenceServiceStub

# The long stream: FP32 rows of SMALL_WIDTH values (4 KiB), STREAMED of them on a first stream, so that what a
# stream of this length grows once (allocator pools, gRPC's flow-control windows) is in the baseline, then STREAMED
# on the stream measured, every answer read as it comes.
SMALL_WIDTH = 1024
STREAMED = 20_000
# Growth allowed while the measured stream runs (80 MiB of requests, as much of answers), sampled every SAMPLE_EVERY
# answers: what a stream holds in flight, up to STREAM_READ_AHEAD (1,024) requests and their answers (8 MiB at 4 KiB
# each), and gRPC's buffers of the stream, which vary with how far it widens its windows. Measured: 1 to 4.5 MiB.
LONG_STREAM_GROWTH_MIB = 24.0
SAMPLE_EVERY = 2_000
# Growth allowed once the stream ended and memory settled: what it held in flight is given back. Measured: -0.7 to
# 2 MiB. A server keeping 300 bytes a request (a twentieth of what each one carries in and out) would exceed it.
AFTER_STREAM_GROWTH_MIB = 6.0

# The hostile stream: HOSTILE_REQUESTS rows of 1 MiB written as fast as the transport takes them, no answer read.
BIG_WIDTH = MIB // 4
HOSTILE_REQUESTS = 200
# The window of the bounded server: small, so that what the servicer holds is small.
WINDOW_BYTES = 4 * MIB
# What the server may hold beyond its window while the stream stalls: gRPC's own buffers of the stream, above all the
# requests it received that the servicer has not read, as many as the stream's HTTP/2 window lets in. gRPC widens
# that window with its estimate of the connection's bandwidth-delay product, so it varies from run to run. Measured
# with a 4 MiB window: 9 to 29 requests taken by the client and 11 to 38 MiB of growth, once 55 and 62 MiB.
WINDOW_MARGIN_MIB = 96.0
# The negative control's window, larger than all the stream sends, and the growth it must show: three quarters of
# the 200 MiB of answers computed and never read (measured: 203 to 221 MiB).
HUGE_WINDOW_BYTES = 1024 * MIB
UNBOUNDED_MIN_GROWTH_MIB = 150.0
# A stream has stalled when its client has had no request taken for STALL_QUIET_S; it must within STALL_TIMEOUT_S.
STALL_QUIET_S = 0.5
STALL_TIMEOUT_S = 30.0


@pytest.fixture
def stream_repository(tmp_path: Path) -> Path:
    """``small``: identity over rows of 4 KiB; ``big``: identity over rows of 1 MiB."""
    repo = tmp_path / "models"
    write_model_version(repo, "small", 1, identity_model("FP32", (SMALL_WIDTH,)))
    write_model_version(repo, "big", 1, identity_model("FP32", (BIG_WIDTH,)))
    return repo


def row_request(model: str, width: int, index: int) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=model, id=str(index))
    request.inputs.add(name="x", datatype="FP32", shape=[1, width])
    request.raw_input_contents.append(np.full((1, width), index, dtype=np.float32).tobytes())
    return request


async def stream_all(stub: Stub, count: int, on_answer: Callable[[int], None] = lambda _: None) -> None:
    """Stream ``count`` 4 KiB requests on one ModelStreamInfer call, reading every answer as it comes."""

    async def requests() -> AsyncIterator[pb.ModelInferRequest]:
        for index in range(count):
            yield row_request("small", SMALL_WIDTH, index)

    answered = 0
    async for answer in stub.ModelStreamInfer(requests(), timeout=CALL_TIMEOUT_S):
        assert answer.error_message == ""
        assert answer.infer_response.id == str(answered)
        answered += 1
        on_answer(answered)
    assert answered == count


async def test_a_long_stream_read_as_it_goes_holds_flat_memory(
    start_measured: StartMeasured, connect: Connect, stream_repository: Path
) -> None:
    server = start_measured(stream_repository)
    stub = connect(server.port)
    await stream_all(stub, STREAMED)
    baseline = await server.memory.settled()
    during: list[float] = []

    def sample(answered: int) -> None:
        if answered % SAMPLE_EVERY == 0:
            during.append(server.memory.now() - baseline)

    await stream_all(stub, STREAMED, sample)
    after = await server.memory.settled() - baseline

    assert len(during) == STREAMED // SAMPLE_EVERY
    assert max(during) <= LONG_STREAM_GROWTH_MIB, f"growth during the stream, MiB: {[round(g, 1) for g in during]}"
    assert after <= AFTER_STREAM_GROWTH_MIB, f"the stream left the server {after:.1f} MiB larger"


class HostileStream:
    """A client that writes up to ``HOSTILE_REQUESTS`` requests of 1 MiB on one stream and never reads an answer."""

    def __init__(self, stub: Stub) -> None:
        self.written = 0  # requests the client's transport took
        self.call = stub.ModelStreamInfer(self._requests(), timeout=CALL_TIMEOUT_S + STALL_TIMEOUT_S)

    async def _requests(self) -> AsyncIterator[pb.ModelInferRequest]:
        for index in range(HOSTILE_REQUESTS):
            yield row_request("big", BIG_WIDTH, index)
            self.written += 1

    async def stalled(self) -> int:
        """Wait until the client's writes stopped (pushed back, or all written); return how many were taken."""
        deadline = time.monotonic() + STALL_TIMEOUT_S
        seen, since = -1, time.monotonic()
        while True:
            now = time.monotonic()
            if self.written != seen:
                seen, since = self.written, now
            elif now - since >= STALL_QUIET_S:
                return seen
            assert now < deadline, f"the stream's writes never stalled ({self.written} written)"
            # The client's progress has no event to wait for: poll it.
            await asyncio.sleep(0.05)


async def warm_up_big(stub: Stub) -> None:
    """A few 1 MiB requests on a stream, every answer read: gRPC's and onnxruntime's buffers for them exist once."""
    call = stub.ModelStreamInfer(timeout=CALL_TIMEOUT_S)
    for index in range(4):
        await call.write(row_request("big", BIG_WIDTH, index))
        answer = await call.read()
        assert answer.error_message == ""
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF


async def test_a_stream_whose_answers_are_never_read_holds_little_more_than_its_window(
    start_measured: StartMeasured, connect: Connect, stream_repository: Path
) -> None:
    server = start_measured(stream_repository, "--stream-window-bytes", str(WINDOW_BYTES))
    stub = connect(server.port)
    await warm_up_big(stub)
    baseline = await server.memory.settled()

    with server.memory.peak() as peak:
        hostile = HostileStream(stub)
        written = await hostile.stalled()
        held = await server.memory.settled()

    bound = WINDOW_BYTES / MIB + WINDOW_MARGIN_MIB
    assert written < HOSTILE_REQUESTS / 2, f"the server read {written} requests instead of pushing back"
    assert peak.mib - baseline <= bound, f"{written} requests taken: the server grew by {peak.mib - baseline:.1f} MiB"
    assert held - baseline <= bound

    # The client goes away with answers still waiting: the server drops the stream and serves on, logging nothing.
    hostile.call.cancel()
    answer = await stub.ModelInfer(row_request("small", SMALL_WIDTH, 7), timeout=CALL_TIMEOUT_S)
    assert np.frombuffer(answer.raw_output_contents[0], dtype=np.float32)[0] == 7
    assert await asyncio.to_thread(server.serve.terminate) == 0
    log = server.log()
    assert "Traceback" not in log and " ERROR " not in log, log


async def test_a_huge_window_lets_a_stream_whose_answers_are_never_read_grow_the_server(
    start_measured: StartMeasured, connect: Connect, stream_repository: Path
) -> None:
    """Negative control: the same client and measurement, with a window larger than the whole stream."""
    server = start_measured(stream_repository, "--stream-window-bytes", str(HUGE_WINDOW_BYTES))
    stub = connect(server.port)
    await warm_up_big(stub)
    baseline = await server.memory.settled()

    hostile = HostileStream(stub)
    written = await hostile.stalled()
    growth = await server.memory.settled() - baseline
    hostile.call.cancel()

    assert written == HOSTILE_REQUESTS
    assert growth >= UNBOUNDED_MIN_GROWTH_MIB, f"the unbounded stream grew the server by only {growth:.1f} MiB"
