"""Seldon MLServer, installed in its own virtual environment, serving the benchmark's models in several configurations.

MLServer has no ONNX runtime of its own: its scikit-learn runtime serves the same fitted estimators from joblib files.
That is how MLServer serves these models, and the comparison's "MLServer best" is over those configurations only. A
custom runtime of ours (``mlserver_runtime/onnx_runtime.py``, through MLServer's documented extension point) also
serves the same ONNX files with onnxruntime, as a reference: it shows what MLServer's server machinery costs when the
model runs on the same engine as Conduit's.

Configurations follow MLServer's documentation: inference in a worker pool (``parallel_workers``, default 1) or in the
server process (0), and adaptive batching (``max_batch_size``, ``max_batch_time``), off by default; ``debug`` off, as
in production (it logs every call).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSION = "1.7.1"
# The same scikit-learn and onnxruntime as Conduit's, so that the joblib files load and the ONNX runs identically.
# uvloop 0.22+ raises from get_event_loop() in a fresh process, which kills MLServer 1.7's inference workers at start.
PACKAGES = [
    f"mlserver=={VERSION}",
    f"mlserver-sklearn=={VERSION}",
    "scikit-learn==1.9.1",
    "onnxruntime==1.32.0",
    "uvloop==0.21.0",
]


@dataclass(frozen=True)
class Configuration:
    """One way of running MLServer."""

    name: str
    runtime: str
    """``sklearn`` (joblib) or ``onnx`` (the custom runtime)."""
    parallel_workers: int
    max_batch_size: int = 0
    max_batch_time_s: float = 0.0

    @property
    def stock(self) -> bool:
        """Whether MLServer runs only its own code: its scikit-learn runtime, not our ONNX runtime."""
        return self.runtime == "sklearn"

    @property
    def label(self) -> str:
        if self.stock:
            return f"MLServer {VERSION} ({self.name})"
        return f"MLServer {VERSION} + our ONNX runtime ({self.name})"


CONFIGURATIONS = [
    Configuration("sklearn, defaults", "sklearn", parallel_workers=1),
    Configuration("sklearn, in-process", "sklearn", parallel_workers=0),
    Configuration(
        "sklearn, adaptive batching 64/1ms", "sklearn", parallel_workers=1, max_batch_size=64, max_batch_time_s=0.001
    ),
    Configuration(
        "sklearn, in-process, adaptive batching 64/1ms",
        "sklearn",
        parallel_workers=0,
        max_batch_size=64,
        max_batch_time_s=0.001,
    ),
    # Not a configuration of MLServer but our code inside it: shows how much of the gap is the scikit-learn runtime.
    Configuration("in-process", "onnx", parallel_workers=0),
]


def install(venv: Path) -> Path:
    """Create ``venv`` with MLServer in it unless it is already there; return its ``mlserver`` executable."""
    executable = venv / "bin" / "mlserver"
    stamp = venv / ".installed"
    if stamp.exists() and stamp.read_text() == "\n".join(PACKAGES):
        return executable
    print(f"installing MLServer {VERSION} into {venv}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *PACKAGES], check=True)
    stamp.write_text("\n".join(PACKAGES))
    return executable


def write_repository(
    root: Path,
    configuration: Configuration,
    models: dict[str, tuple[Path, Path]],
    *,
    grpc_port: int,
    http_port: int,
    metrics_port: int,
) -> Path:
    """An MLServer model repository for ``configuration``: ``settings.json`` and one folder per model.

    Args:
        models: model name -> (joblib file, ONNX file).
    """
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    settings = {
        "grpc_port": grpc_port,
        "http_port": http_port,
        "metrics_port": metrics_port,
        "parallel_workers": configuration.parallel_workers,
        "host": "127.0.0.1",
        # debug (on by default) logs a line per gRPC call; production runs turn it off.
        "debug": False,
    }
    (root / "settings.json").write_text(json.dumps(settings, indent=2))
    for name, (joblib_file, onnx_file) in models.items():
        folder = root / name
        folder.mkdir()
        if configuration.runtime == "sklearn":
            shutil.copy(joblib_file, folder / "model.joblib")
            implementation, uri = "mlserver_sklearn.SKLearnModel", "./model.joblib"
            outputs = [{"name": "predict", "datatype": "INT64", "shape": [-1, 1]}]
        else:
            shutil.copy(onnx_file, folder / "model.onnx")
            shutil.copy(HERE / "mlserver_runtime" / "onnx_runtime.py", folder / "onnx_runtime.py")
            implementation, uri = "onnx_runtime.OnnxModel", "./model.onnx"
            outputs = [
                {"name": "label", "datatype": "INT64", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
            ]
        model_settings = {
            "name": name,
            "implementation": implementation,
            "parameters": {"uri": uri, "version": "1"},
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 32]}],
            "outputs": outputs,
            "max_batch_size": configuration.max_batch_size,
            "max_batch_time": configuration.max_batch_time_s,
        }
        (folder / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    return root
