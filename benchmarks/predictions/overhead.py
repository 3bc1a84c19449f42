"""What sampled prediction logging costs a served model: perf_analyzer throughput at concurrency 16 with logging off
(sample 0) against the following server's default ratio (0.01), and against logging every request (1.0).

Same model, rows and method as ``benchmarks/sketches/overhead.py`` (whose ``build`` and ``measure`` it uses): a
32-feature model served from a repository, batch 1, unary gRPC, interleaved rounds, medians compared, with the
server's CPU time per inference beside the throughput. Logging writes to a local ``--prediction-log-dir`` (flushed
every 10 s, the default); sketches stay on in every system, as they are by default.

Usage: benchmarks/predictions/overhead [--rounds 5] [--duration-s 6]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sketches"))
from overhead import CONCURRENCY, ROOT, build, measure

SYSTEMS = {"sample 0": "0", "sample 0.01": "0.01", "sample 1.0": "1.0"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration-s", type=float, default=6.0, help="perf_analyzer time per point (3 windows)")
    args = parser.parse_args()
    conduit = [sys.executable, "-c", "import sys; from clients.cli import main; sys.exit(main())"]
    with tempfile.TemporaryDirectory(prefix="conduit-prediction-log-overhead-") as tmp:
        workdir = Path(tmp)
        input_data = workdir / "input.json"
        build(workdir / "repo", input_data)
        logs = workdir / "logs"
        results: dict[str, list[float]] = {name: [] for name in SYSTEMS}
        cpu: dict[str, list[float]] = {name: [] for name in SYSTEMS}
        names = list(SYSTEMS)
        for round_ in range(args.rounds):
            for name in names if round_ % 2 == 0 else names[::-1]:
                env = {"CONDUIT_PREDICTION_LOG_SAMPLE": SYSTEMS[name], "CONDUIT_PREDICTION_LOG_DIR": str(logs)}
                throughput, cpu_us = measure(
                    name, conduit, env=env, cwd=ROOT, input_data=input_data, workdir=workdir, duration_s=args.duration_s
                )
                results[name].append(throughput)
                cpu[name].append(cpu_us)
                print(f"round {round_ + 1}: {name:<12} {throughput:8.0f} infer/s {cpu_us:7.1f} us CPU", flush=True)
        logged = sum(1 for _ in logs.rglob("*.parquet"))
    print(f"\nperf_analyzer, concurrency {CONCURRENCY}, batch 1, {args.rounds} interleaved rounds (median, min-max):")
    medians = {name: statistics.median(values) for name, values in results.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    for name, values in results.items():
        print(
            f"  {name:<12} {medians[name]:8.0f} infer/s ({min(values):.0f}-{max(values):.0f}); "
            f"server CPU {cpu_medians[name]:.1f} us per inference ({min(cpu[name]):.1f}-{max(cpu[name]):.1f})"
        )
    for name in names[1:]:
        print(f"  {name} / sample 0: throughput {medians[name] / medians['sample 0']:.3f}, ", end="")
        print(f"CPU per inference {cpu_medians[name] / cpu_medians['sample 0']:.3f}")
    print(f"  ({logged} Parquet files written)")


if __name__ == "__main__":
    main()
