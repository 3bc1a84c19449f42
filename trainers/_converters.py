"""ONNX converters skl2onnx does not ship: Conduit's ``Clip`` step, and LightGBM/XGBoost through onnxmltools."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from onnx import TensorProto
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import FloatTensorType
from skl2onnx.common.shape_calculator import (
    calculate_linear_classifier_output_shapes,
    calculate_linear_regressor_output_shapes,
)

from trainers._pipeline import Clip

__all__ = ["register_converters"]


def _clip_shape(operator: Any) -> None:
    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([rows, operator.inputs[0].get_second_dimension()])


def _convert_clip(scope: Any, operator: Any, container: Any) -> None:
    clip: Clip = operator.raw_operator
    names = []
    for side, bounds in (("low", clip.lower), ("high", clip.upper)):
        name = scope.get_unique_variable_name(f"clip_{side}")
        values = np.asarray(bounds, dtype=np.float32)
        container.add_initializer(name, TensorProto.FLOAT, [1, len(values)], values.tolist())
        names.append(name)
    upper_clipped = scope.get_unique_variable_name("clip_upper")
    # Min/Max broadcast per column; ONNX Clip takes only scalar bounds.
    container.add_node(
        "Min", [operator.inputs[0].full_name, names[1]], upper_clipped, name=scope.get_unique_operator_name("ClipMin")
    )
    container.add_node(
        "Max", [upper_clipped, names[0]], operator.outputs[0].full_name, name=scope.get_unique_operator_name("ClipMax")
    )


@functools.cache
def register_converters() -> None:
    """Register every converter once per process (skl2onnx keeps a global registry)."""
    update_registered_converter(Clip, "ConduitClip", _clip_shape, _convert_clip)
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import (  # type: ignore[import-untyped]
        convert_lightgbm,
    )
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import (  # type: ignore[import-untyped]
        convert_xgboost,
    )
    from xgboost import XGBClassifier, XGBRegressor

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    classifier_shape, regressor_shape = (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    update_registered_converter(
        LGBMClassifier, "LightGbmLGBMClassifier", classifier_shape, convert_lightgbm, options=classifier_options
    )
    update_registered_converter(
        LGBMRegressor, "LightGbmLGBMRegressor", regressor_shape, convert_lightgbm, options={"split": None}
    )
    update_registered_converter(
        XGBClassifier, "XGBoostXGBClassifier", classifier_shape, convert_xgboost, options=classifier_options
    )
    update_registered_converter(XGBRegressor, "XGBoostXGBRegressor", regressor_shape, convert_xgboost)
