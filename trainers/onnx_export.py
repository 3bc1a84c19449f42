"""Export scikit-learn models to ONNX the way Conduit serves them, with a parity check against the native model."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType

from trainers._parity import ParityError, ParityReport, compare_outputs

__all__ = [
    "OPSETS",
    "ParityError",
    "ParityReport",
    "export_pipeline",
    "export_sklearn",
    "run_onnx",
    "write_model_version",
]

# ai.onnx.ml 3 is the newest the tree converters (skl2onnx and onnxmltools) write.
OPSETS = {"": 17, "ai.onnx.ml": 3}


def export_sklearn(model: Any, sample: np.ndarray, *, input_name: str = "input", atol: float = 1e-5) -> bytes:
    """Convert a fitted estimator or pipeline over FP32 features and check the graph against ``model`` on ``sample``.

    Classifiers answer plain tensors (``label`` INT64 and ``probabilities`` FP32; no ZipMap), regressors
    ``variable``. The first dimension is dynamic, so the server batches requests.

    Raises:
        ParityError: labels differ, or probabilities/predictions differ by more than ``atol``.
    """
    features = sample.shape[1]
    onnx_model = to_onnx(
        model,
        initial_types=[(input_name, FloatTensorType([None, features]))],
        options={id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None,
        target_opset=17,
    )
    payload: bytes = onnx_model.SerializeToString()
    rows = sample.astype(np.float32)
    outputs = run_onnx(payload, {input_name: rows})
    if hasattr(model, "predict_proba"):
        probabilities = model.predict_proba(rows)
        columns = [str(c) for c in model.classes_]
        report = compare_outputs(
            probabilities,
            outputs[1],
            columns=columns,
            tolerance=atol,
            native_labels=model.predict(rows),
            served_labels=outputs[0],
        )
    else:
        report = compare_outputs(model.predict(rows), outputs[0], columns=["variable"], tolerance=atol)
    if not report.passed:
        raise ParityError(report.describe(), report)
    return payload


def export_pipeline(pipeline: Any, inputs: Mapping[str, np.ndarray]) -> bytes:
    """Convert a fitted pipeline whose inputs are one ``[rows, 1]`` column each (float32 or strings), by name.

    Classifiers answer ``label`` (INT64) and ``probabilities`` (FP32, no ZipMap); regressors ``variable`` (FP32).
    LightGBM and XGBoost models convert through onnxmltools.
    """
    from trainers._converters import register_converters

    register_converters()
    initial_types = [
        (name, StringTensorType([None, 1]) if values.dtype == object else FloatTensorType([None, 1]))
        for name, values in inputs.items()
    ]
    options = {id(pipeline): {"zipmap": False}} if hasattr(pipeline, "predict_proba") else None
    onnx_model = to_onnx(pipeline, initial_types=initial_types, options=options, target_opset=OPSETS)
    # skl2onnx turns every input name into an identifier ("Individual ID" -> "Individual_ID"); ONNX itself takes any
    # non-empty name, and callers send the column names they know.
    _rename_values(onnx_model.graph, dict(zip((i.name for i in onnx_model.graph.input), inputs, strict=True)))
    payload: bytes = onnx_model.SerializeToString()
    return payload


def _rename_values(graph: onnx.GraphProto, names: Mapping[str, str]) -> None:
    """Rename values of ``graph`` wherever they are defined or used, nested graphs included (old -> new name).

    The new names must be free in the graph: skl2onnx only generates identifiers, and it renamed exactly the input
    names that are not identifiers, so a name it changed cannot collide with one it generated.
    """
    names = {old: new for old, new in names.items() if old != new}
    if not names:
        return
    taken = {
        *(v.name for v in graph.input),
        *(i.name for i in graph.initializer),
        *(o for n in graph.node for o in n.output),
    }
    clashes = sorted(set(names.values()) & (taken - names.keys()))
    if clashes:  # never seen; a graph with two values of one name would be refused by onnxruntime less clearly
        raise ValueError(f"the graph already holds a value named {clashes[0]!r}")
    for values in (graph.input, graph.output, graph.value_info):
        for value in values:
            value.name = names.get(value.name, value.name)
    for initializer in graph.initializer:
        initializer.name = names.get(initializer.name, initializer.name)
    for node in graph.node:
        node.input[:] = [names.get(name, name) for name in node.input]
        node.output[:] = [names.get(name, name) for name in node.output]
        for attribute in node.attribute:
            for subgraph in (attribute.g, *attribute.graphs):
                _rename_values(subgraph, names)


def run_onnx(payload: bytes, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Run a graph once with onnxruntime on the CPU; outputs in the graph's order."""
    outputs: list[np.ndarray] = _session(payload).run(None, dict(inputs))
    return outputs


def _session(payload: bytes) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(payload, providers=["CPUExecutionProvider"])


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
