"""The native front spike as a server process: the compiled gRPC front (native/) serving a model repository.

Modes:
- ``native``: the front alone; every ModelInfer is answered in Rust with zero-filled outputs (no Python per request).
- ``identity``: one Python hand-off per batch; the handler does a tiny numpy op (outputs shaped like the model's).
- ``onnx``: one Python hand-off per batch; the handler runs the model's onnxruntime session on the whole batch.

The models, their tensors and sessions come from the minimal server's loader, so every server sees the same graphs.

Usage: python benchmarks/native_spike/spike_server.py --mode MODE --model-repository DIR [--host H] [--port P]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))

import conduit_native_spike
import minimal_server

Handler = Callable[[str, dict[str, np.ndarray]], dict[str, np.ndarray]]


def _identity_handler(models: dict[str, minimal_server.Model]) -> Handler:
    """A tiny numpy op per batch: zero labels and the first columns of the input as probabilities."""

    def handle(model_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        (x,) = inputs.values()
        outputs: dict[str, np.ndarray] = {}
        for tensor in models[model_name].outputs:
            if tensor.dtype is np.int64:
                outputs[tensor.name] = np.zeros(len(x), dtype=np.int64)
            else:
                width = tensor.shape[1] if len(tensor.shape) > 1 else 1
                outputs[tensor.name] = np.ascontiguousarray(x[:, :width] * 0.5)
        return outputs

    return handle


def _onnx_handler(models: dict[str, minimal_server.Model]) -> Handler:
    """One onnxruntime call per batch."""

    def handle(model_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        model = models[model_name]
        results = model.session.run(None, inputs)
        return {t.name: np.ascontiguousarray(v) for t, v in zip(model.outputs, results, strict=True)}

    return handle


def main() -> None:
    """Parse flags, load the repository and serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("native", "identity", "onnx"), required=True)
    parser.add_argument("--model-repository", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--threads", type=int, default=2, help="tokio worker threads (default 2)")
    args = parser.parse_args()
    models = minimal_server.load_repository(args.model_repository)
    specs = [
        (
            m.name,
            m.version,
            m.max_batch_size,
            [(t.name, t.datatype, t.shape[1:]) for t in m.inputs],
            [(t.name, t.datatype, t.shape[1:]) for t in m.outputs],
        )
        for m in models.values()
    ]
    handler = {"native": None, "identity": _identity_handler(models), "onnx": _onnx_handler(models)}[args.mode]
    print(f"native spike ({args.mode}): {', '.join(models)} on {args.host}:{args.port}", flush=True)
    conduit_native_spike.serve(args.host, args.port, specs, handler, args.threads)


if __name__ == "__main__":
    main()
