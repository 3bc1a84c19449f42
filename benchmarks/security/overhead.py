"""What securing the inference port costs: perf_analyzer throughput at concurrency 16 with the port open
(plaintext, no authentication), with bearer-token authentication (a tokens file), and with TLS plus tokens.

The logistic regression of ``benchmarks/serving`` (one 32-feature FP32 input: the cheapest model there, so a fixed
cost per request weighs the most), held-out rows (``--input-data``), batch 1, unary gRPC. perf_analyzer sends the
token with ``-H 'authorization: Bearer …'`` and, for TLS, trusts the run's own CA (one connection, handshaken once).
Each round starts a fresh ``conduit serve`` per system, in an order alternating between rounds; medians are
compared, with the server's own CPU time per inference (from /proc) beside the throughput, which moves far less
with the neighbours' load.

Usage: benchmarks/security/overhead [--rounds 5] [--duration-s 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for tests.pki, the throw-away CA of the tests
from harness import free_port, perf_analyzer, wait_ready
from workload import build_repository, write_input_data

from contract.tokens import hash_token, new_token
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from tests.pki import Authority

ROOT = Path(__file__).resolve().parents[2]
MODEL = "logreg"
CONCURRENCY = 16


@dataclass(frozen=True)
class System:
    serve_args: tuple[str, ...]
    tls: bool
    token: bool
    """perf_analyzer sends the token (``-H``), whether or not the server checks it."""


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _inferences(channel: grpc.Channel, token: str) -> int:
    stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
    metadata = (("authorization", f"Bearer {token}"),)
    answer = stub.ModelStatistics(pb.ModelStatisticsRequest(name=MODEL), timeout=10.0, metadata=metadata)
    return int(sum(stats.inference_count for stats in answer.model_stats))


def measure(
    name: str, system: System, *, workdir: Path, ca: Authority, token: str, duration_s: float
) -> tuple[float, float]:
    """Throughput (inferences per second) and the server's CPU microseconds per inference, over one run."""
    port = free_port()
    log = workdir / f"{name.replace(' ', '_')}-{port}.log"
    command = [sys.executable, "-c", "import sys; from clients.cli import main; sys.exit(main())"]
    command += ["serve", "--model-repository", str(workdir / "repo"), "--grpc-port", str(port), "--metrics-port", "0"]
    command += list(system.serve_args)
    credentials = grpc.ssl_channel_credentials(ca.cert_bytes()) if system.tls else None
    extra = ["-H", f"authorization: Bearer {token}"] if system.token else []
    if system.tls:
        extra += ["--ssl-grpc-use-ssl", "--ssl-grpc-root-certifications-file", str(ca.cert)]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            wait_ready(port, process, log, credentials=credentials)
            target = f"localhost:{port}"
            with grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target) as channel:
                cpu, count = _cpu_s(process.pid), _inferences(channel, token)
                point = perf_analyzer(
                    ROOT / ".cache" / "perf_analyzer" / "bin" / "perf_analyzer",
                    system=name,
                    model=MODEL,
                    port=port,
                    concurrency=CONCURRENCY,
                    duration_s=duration_s,
                    input_data=workdir / "input.json",
                    workdir=workdir,
                    host="localhost",
                    extra=tuple(extra),
                )
                cpu_us = (_cpu_s(process.pid) - cpu) * 1e6 / max(1, _inferences(channel, token) - count)
        finally:
            process.terminate()
            process.wait(60)
    return point.measurement.throughput, cpu_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration-s", type=float, default=6.0, help="perf_analyzer time per point (3 windows)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conduit-security-overhead-") as tmp:
        workdir = Path(tmp)
        rows = build_repository(workdir / "repo")
        write_input_data(rows, workdir / "input.json")
        ca = Authority.create(workdir / "ca")
        server = ca.issue(workdir / "server")
        token = new_token()
        tokens = workdir / "tokens.toml"
        tokens.write_text(f'[[tokens]]\nname = "bench"\nrole = "viewer"\nsha256 = "{hash_token(token)}"\n')
        tls = ("--tls-cert", str(server.cert), "--tls-key", str(server.key))
        systems = {
            "plaintext, open": System((), tls=False, token=False),
            # The header alone, to an open server: what carrying the metadata costs, apart from checking it.
            "plaintext, open, header": System((), tls=False, token=True),
            "plaintext, token": System(("--tokens-file", str(tokens)), tls=False, token=True),
            "TLS, token": System((*tls, "--tokens-file", str(tokens)), tls=True, token=True),
        }
        results: dict[str, list[float]] = {name: [] for name in systems}
        cpu: dict[str, list[float]] = {name: [] for name in systems}
        names = list(systems)
        for round_ in range(args.rounds):
            for name in names if round_ % 2 == 0 else names[::-1]:
                throughput, cpu_us = measure(
                    name, systems[name], workdir=workdir, ca=ca, token=token, duration_s=args.duration_s
                )
                results[name].append(throughput)
                cpu[name].append(cpu_us)
                print(f"round {round_ + 1}: {name:<23} {throughput:8.0f} infer/s {cpu_us:7.1f} us CPU", flush=True)
    print(f"\nperf_analyzer, {MODEL}, concurrency {CONCURRENCY}, batch 1, {args.rounds} interleaved rounds")
    medians = {name: statistics.median(values) for name, values in results.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    base = names[0]
    print("| system | infer/s | vs open | server CPU per inference (µs) | vs open |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in names:
        print(
            f"| {name} | {medians[name]:.0f} ({min(results[name]):.0f}-{max(results[name]):.0f}) "
            f"| {medians[name] / medians[base]:.3f} "
            f"| {cpu_medians[name]:.1f} ({min(cpu[name]):.1f}-{max(cpu[name]):.1f}) "
            f"| {cpu_medians[name] / cpu_medians[base]:.3f} |"
        )


if __name__ == "__main__":
    main()
