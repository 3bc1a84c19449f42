"""Reading an ONNX graph's signature without running it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from contract.entities import TensorSignature
from contract.errors import ConduitError, ErrorCode
from contract.signature import read_signature, signature_of
from tests.conftest import TrainedModel, identity_model


def _write(tmp_path: Path, model: onnx.ModelProto | bytes) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(model if isinstance(model, bytes) else model.SerializeToString())
    return path


def _graph_with_initializer_input() -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.ones((4, 2), dtype=np.float32), "weight")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "weight"], ["y"])],
        "matmul",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]),
            # Older exporters list initializers among the inputs too; nobody feeds them.
            helper.make_tensor_value_info("weight", TensorProto.FLOAT, [4, 2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_trained_classifier(tmp_path: Path, classifier: TrainedModel) -> None:
    model_bytes = classifier.onnx
    inputs, outputs = read_signature(_write(tmp_path, model_bytes))
    assert inputs == (TensorSignature("input", "FP32", (-1, 32)),)
    assert outputs == (TensorSignature("label", "INT64", (-1,)), TensorSignature("probabilities", "FP32", (-1, 2)))
    assert signature_of(model_bytes) == (inputs, outputs)
    assert inputs[0].batched and not TensorSignature("x", "FP32", (4, 2)).batched


def test_initializers_are_not_inputs_and_unknown_dims_are_variable(tmp_path: Path) -> None:
    inputs, outputs = read_signature(_write(tmp_path, _graph_with_initializer_input()))
    assert inputs == (TensorSignature("x", "FP32", (-1, 4)),)
    assert outputs == (TensorSignature("y", "FP32", (-1, 2)),)


@pytest.mark.parametrize(("datatype", "expected"), [("BYTES", "BYTES"), ("FP16", "FP16"), ("BOOL", "BOOL")])
def test_datatypes(tmp_path: Path, datatype: str, expected: str) -> None:
    inputs, _ = read_signature(_write(tmp_path, identity_model(datatype)))
    assert inputs == (TensorSignature("x", expected, (-1, 3)),)


def test_type_without_a_protocol_datatype(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "bf16",
        [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [1])],
        [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(ConduitError) as refused:
        read_signature(_write(tmp_path, model))
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT


@pytest.mark.parametrize("payload", [b"", b"not onnx at all", b"\x08\x07" * 50, b"\xff" * 64])
def test_unparsable_files(tmp_path: Path, payload: bytes) -> None:
    with pytest.raises(ConduitError) as in_memory:
        signature_of(payload)
    assert in_memory.value.code is ErrorCode.INVALID_ARGUMENT
    with pytest.raises(ConduitError) as refused:
        read_signature(_write(tmp_path, payload))
    assert refused.value.code is ErrorCode.INVALID_ARGUMENT
