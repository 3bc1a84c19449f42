"""Export scikit-learn models to ONNX the way Conduit serves them, with a parity check against the native model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType

__all__ = ["ParityError", "export_sklearn", "write_model_version"]


class ParityError(ValueError):
    """The exported graph does not answer like the native model."""


def export_sklearn(model: Any, sample: np.ndarray, *, input_name: str = "input", atol: float = 1e-5) -> bytes:
    """Convert a fitted estimator or pipeline over FP32 features and check the graph against ``model`` on ``sample``.

    Classifiers answer plain tensors (``label`` INT64 and ``probabilities`` FP32; no ZipMap), regressors
    ``variable``. The first dimension is dynamic, so the server batches requests.

    Raises:
        ParityError: labels differ, or probabilities/predictions differ by more than ``atol``.
    """
    import onnxruntime as ort

    features = sample.shape[1]
    onnx_model = to_onnx(
        model,
        initial_types=[(input_name, FloatTensorType([None, features]))],
        options={id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None,
        target_opset=17,
    )
    payload: bytes = onnx_model.SerializeToString()
    session = ort.InferenceSession(payload, providers=["CPUExecutionProvider"])
    rows = sample.astype(np.float32)
    outputs = session.run(None, {input_name: rows})
    if hasattr(model, "predict_proba"):
        if not np.array_equal(outputs[0], model.predict(rows)):
            raise ParityError("ONNX labels differ from the native model's")
        gap = float(np.max(np.abs(outputs[1] - model.predict_proba(rows))))
    else:
        gap = float(np.max(np.abs(outputs[0].reshape(-1) - model.predict(rows).reshape(-1))))
    if gap > atol:
        raise ParityError(f"ONNX outputs differ from the native model's by {gap:.3g} (tolerance {atol:g})")
    return payload


def write_model_version(
    repository: Path, name: str, version: int, payload: bytes, config: dict[str, Any] | None = None
) -> Path:
    """Write ``repository/name/version/model.onnx`` atomically (and ``config.json`` when given)."""
    version_dir = repository / name / str(version)
    version_dir.mkdir(parents=True, exist_ok=True)
    target = version_dir / "model.onnx"
    partial = version_dir / ".model.onnx.partial"
    partial.write_bytes(payload)
    partial.replace(target)  # a polling server never sees a half-written file
    if config is not None:
        config_partial = repository / name / ".config.json.partial"
        config_partial.write_text(json.dumps(config, indent=2))
        config_partial.replace(repository / name / "config.json")
    return target
