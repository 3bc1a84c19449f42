"""Fuzzing of request decoding and validation: the committed corpus replayed, then a short coverage-guided run.

The corpus (``corpus/``) holds a valid request for every model (``seed-*``, built by ``Mutator.valid``), the inputs
that reached new code in longer runs (merged by libFuzzer, named by their SHA-1), and the input of each past finding
(``finding-*``). The short run starts from it with a fixed seed, and any finding fails the test; libFuzzer's log in
the failure message shows the exception and the input. ``make fuzz`` runs longer.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from inference_server import kernels
from tests.inference_server.fuzz.target import MODELS, Harness

ROOT = Path(__file__).resolve().parents[3]
CORPUS = Path(__file__).resolve().parent / "corpus"
SEED = 1
BUDGET_S = 30
# Below this, the run did not really fuzz (about 4,000 a second here with the corpus's inputs).
MIN_RUNS = 10_000


@pytest.fixture(scope="module")
def harness() -> Harness:
    kernels.warm_up()
    return Harness()


def test_the_corpus_replays_without_a_finding(harness: Harness) -> None:
    tracemalloc.start()  # the memory bound holds only while tracemalloc traces
    try:
        outcomes = {path.name: harness.check(path.read_bytes()) for path in sorted(CORPUS.iterdir())}
    finally:
        tracemalloc.stop()

    # A valid request for every model is answered, and every past finding is refused as the caller's error.
    assert {f"seed-{model}-raw" for model in MODELS} <= set(outcomes)
    assert {outcome for name, outcome in outcomes.items() if name.startswith("seed-")} == {"answered"}
    assert {outcome for name, outcome in outcomes.items() if name.startswith("finding-")} == {"INVALID_ARGUMENT"}


def test_a_short_fuzzing_run_finds_nothing(tmp_path: Path) -> None:
    new, findings = tmp_path / "new", tmp_path / "findings"
    new.mkdir()
    findings.mkdir()
    command = [
        sys.executable,
        "-m",
        "tests.inference_server.fuzz",
        f"-seed={SEED}",
        f"-max_total_time={BUDGET_S}",
        f"-artifact_prefix={findings}/",
        "-print_final_stats=1",
        str(new),
        str(CORPUS),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=BUDGET_S + 120, check=False)

    log = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("INFO: Instrumenting"))
    found = sorted(path.name for path in findings.iterdir())
    assert result.returncode == 0 and not found, f"findings {found} in {findings}:\n{log[-6000:]}"
    runs = re.search(r"stat::number_of_executed_units: (\d+)", log)
    assert runs is not None, log[-6000:]
    assert int(runs.group(1)) >= MIN_RUNS, log[-6000:]
