"""`conduit serve` as a real process: graceful SIGTERM under load, several workers on one port, start-up errors (of
the whole command and of one worker), and the Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest

from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from trainers.onnx_export import write_model_version

CONDUIT = str(Path(sys.executable).parent / "conduit")
# Bound on polls of things only visible from outside the process (logs, scrapes, metrics flushed every second).
BOUND = 30.0
CLIENTS = 16
# Requests of "slow" wait this long in the server for a fuller batch, so that SIGTERM finds many of them queued.
SLOW_DELAY_S = 0.5
# A request sent this long before SIGTERM has certainly reached the server: it must be answered, and succeed.
ACCEPTED_MARGIN_S = 0.1


@dataclass(frozen=True)
class Outcome:
    started: float
    finished: float
    code: grpc.StatusCode


def one_row(value: float) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="slow")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 3])
    request.raw_input_contents.append(np.full((1, 3), value, dtype=np.float32).tobytes())
    return request


def stub_for(channel: grpc.aio.Channel) -> pb_grpc.GRPCInferenceServiceStub:
    return pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text: str = answer.read().decode()
        return text


def requests_counted(text: str, model: str) -> float:
    """Sum of the requests counter over every status of ``model`` in a Prometheus scrape."""
    pattern = re.compile(r"^conduit_inference_requests\S*\{([^}]*)\}\s+(\S+)$", re.MULTILINE)
    return sum(float(value) for labels, value in pattern.findall(text) if f'model="{model}"' in labels)


def poll(check, what: str) -> None:
    """Poll a condition seen from outside the server process, with a bound."""
    deadline = time.monotonic() + BOUND
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {BOUND}s"
        time.sleep(0.1)


@pytest.fixture
def repository(repository: Path) -> Path:
    identity = (repository / "identity_fp32" / "1" / "model.onnx").read_bytes()
    write_model_version(
        repository, "slow", 1, identity, {"max_batch_size": 64, "max_queue_delay_us": int(SLOW_DELAY_S * 1e6)}
    )
    return repository


async def test_sigterm_under_load_answers_every_accepted_request_and_exits_0(start_serve, repository: Path) -> None:
    served = start_serve(repository)
    outcomes: list[Outcome] = []
    warmed_up = asyncio.Event()  # every client got a few answers
    wave = asyncio.Event()  # a client sent a request after warm-up (the others send theirs within milliseconds)
    stopped = asyncio.Event()

    async def client(stub: pb_grpc.GRPCInferenceServiceStub, number: int) -> None:
        while not stopped.is_set():
            if warmed_up.is_set():
                wave.set()
            started = time.monotonic()
            try:
                response = await stub.ModelInfer(one_row(number), timeout=BOUND)
                answer = np.frombuffer(response.raw_output_contents[0], dtype=np.float32)
                assert (answer == number).all()
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as error:
                assert "Traceback" not in (error.details() or "")
                code = error.code()
            outcomes.append(Outcome(started, time.monotonic(), code))
            if len(outcomes) >= 3 * CLIENTS:
                warmed_up.set()

    channels = [grpc.aio.insecure_channel(served.target) for _ in range(4)]
    tasks = [asyncio.create_task(client(stub_for(channels[i % 4]), i)) for i in range(CLIENTS)]
    try:
        await asyncio.wait_for(warmed_up.wait(), BOUND)
        wave.clear()
        await asyncio.wait_for(wave.wait(), BOUND)
        # Signal in the middle of the wave's wait for a fuller batch: its requests are queued inside the server.
        await asyncio.sleep(SLOW_DELAY_S / 2)
        sigterm = time.monotonic()
        served.process.terminate()
        exit_code = await asyncio.to_thread(served.process.wait, BOUND)
    finally:
        stopped.set()
        await asyncio.gather(*tasks)
        for channel in channels:
            await channel.close()

    assert exit_code == 0, served.log.read_text()
    assert {o.code for o in outcomes} <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
    accepted = [o for o in outcomes if o.started < sigterm - ACCEPTED_MARGIN_S]
    assert all(o.code == grpc.StatusCode.OK for o in accepted)
    # The drain is what is being tested: accepted requests still queued when the signal came were answered.
    assert sum(o.finished > sigterm for o in accepted) >= CLIENTS // 2
    assert "Traceback" not in served.log.read_text()


def worker_pids(parent: int) -> list[int]:
    """Processes started by ``parent`` with multiprocessing's spawn (the resource tracker is not a worker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


async def test_two_workers_share_the_port_and_both_answer(start_serve, repository: Path) -> None:
    served = start_serve(repository, "--workers", "2")
    poll(lambda: served.log.read_text().count("serving on") == 2, "both workers serving")
    assert len(worker_pids(served.process.pid)) == 2

    async def one_call_on_a_new_connection(number: int) -> None:
        # One connection per call: the kernel spreads connections, not calls, over the workers. Without a local
        # subchannel pool, gRPC would reuse one connection for every channel to the same address.
        options = [("grpc.use_local_subchannel_pool", 1)]
        async with grpc.aio.insecure_channel(served.target, options=options) as channel:
            request = pb.ModelInferRequest(model_name="identity_fp32")
            request.inputs.add(name="x", datatype="FP32", shape=[1, 3])
            request.raw_input_contents.append(np.full((1, 3), number, dtype=np.float32).tobytes())
            response = await stub_for(channel).ModelInfer(request, timeout=BOUND)
            assert (np.frombuffer(response.raw_output_contents[0], dtype=np.float32) == number).all()

    await asyncio.gather(*(one_call_on_a_new_connection(i) for i in range(32)))

    # Worker i scrapes on metrics_port + i; each counts the calls it answered, and together they answered all.
    ports = (served.metrics_port, served.metrics_port + 1)
    counted: list[float] = []

    def all_counted() -> bool:
        counted[:] = [requests_counted(scrape(port), "identity_fp32") for port in ports]
        return sum(counted) == 32

    await asyncio.to_thread(poll, all_counted, "both workers' metrics flushed")
    assert all(count > 0 for count in counted), f"one worker answered every call: {counted}"
    assert served.terminate() == 0


def test_missing_repository_exits_non_zero_with_a_clear_message(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    done = subprocess.run(
        [CONDUIT, "serve", "--model-repository", str(missing), "--grpc-port", "0", "--metrics-port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode != 0
    assert str(missing) in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("busy", ["--grpc-port", "--metrics-port"])
def test_a_busy_port_exits_non_zero_with_a_clear_message(busy: str, tmp_path: Path) -> None:
    repo = tmp_path / "models"
    repo.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"--grpc-port": "0", "--metrics-port": "0", busy: str(port)}
        command = [CONDUIT, "serve", "--model-repository", str(repo)]
        command += [arg for flag, value in ports.items() for arg in (flag, value)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode != 0
    assert f"127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


async def test_prometheus_scrape_shows_requests_and_duration_histogram(start_serve, repository: Path) -> None:
    served = start_serve(repository)
    async with grpc.aio.insecure_channel(served.target) as channel:
        stub = stub_for(channel)
        for value in range(5):
            request = pb.ModelInferRequest(model_name="identity_fp32")
            request.inputs.add(name="x", datatype="FP32", shape=[1, 3])
            request.raw_input_contents.append(np.full((1, 3), value, dtype=np.float32).tobytes())
            await stub.ModelInfer(request, timeout=BOUND)

    text = ""

    def counted() -> bool:
        nonlocal text
        text = scrape(served.metrics_port)
        return requests_counted(text, "identity_fp32") == 5

    await asyncio.to_thread(poll, counted, "the requests reaching the scrape")
    assert re.search(r'^conduit_inference_requests\S*\{[^}]*status="OK"', text, re.MULTILINE)
    buckets = re.findall(r"^conduit_inference_duration\S*_bucket\{([^}]*)\}\s+(\S+)$", text, re.MULTILINE)
    infinite = [float(v) for labels, v in buckets if 'model="identity_fp32"' in labels and 'le="+Inf"' in labels]
    assert infinite == [5.0]
    assert served.terminate() == 0


def ports_with_the_next_one_taken() -> tuple[int, socket.socket]:
    """A free port P and a listening socket on P + 1 (closed by the caller)."""
    for _ in range(50):
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1] - 1
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port))
        except OSError:
            taken.close()
            continue
        return port, taken
    raise RuntimeError("no free port below a free port")


def free_grpc_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_worker_that_cannot_start_stops_the_whole_command(repository: Path, tmp_path: Path) -> None:
    metrics_port, taken = ports_with_the_next_one_taken()
    log = tmp_path / "serve.log"
    command = [CONDUIT, "serve", "--model-repository", str(repository), "--workers", "2"]
    command += ["--grpc-port", str(free_grpc_port()), "--metrics-port", str(metrics_port)]
    with taken, log.open("wb") as out:
        # A session of its own, so that whatever is left of it can be killed, workers included.
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            exit_code = process.wait(BOUND * 2)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            pytest.fail(f"conduit serve still running {BOUND * 2:g}s after worker 1 failed:\n{log.read_text()}")

    assert exit_code != 0, log.read_text()
    assert f"127.0.0.1:{metrics_port + 1}" in log.read_text()
    assert "Traceback" not in log.read_text()

    def session_gone() -> bool:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        return False

    try:
        poll(session_gone, "every worker exiting")  # worker 0 must not keep serving on its own
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
