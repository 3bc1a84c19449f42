"""``conduit bench``: latency and throughput of any Open Inference Protocol gRPC server, closed or open loop.

Example:
    >>> import asyncio
    >>> from clients.bench import BenchConfig, Level, run_bench
    >>> config = BenchConfig("localhost:8001", "iris", (Level(rate=500),), duration_s=10)
    >>> with asyncio.Runner(loop_factory=new_event_loop) as runner:
    ...     result = runner.run(run_bench(config))
"""

from clients.bench._config import BenchConfig, Level, parse_duration
from clients.bench._inputs import InputError
from clients.bench._report import to_json
from clients.bench._runner import BenchResult, LevelResult, new_event_loop, run_bench

__all__ = [
    "BenchConfig",
    "BenchResult",
    "InputError",
    "Level",
    "LevelResult",
    "new_event_loop",
    "parse_duration",
    "run_bench",
    "to_json",
]
