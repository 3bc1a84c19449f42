"""What a loaded model version accepts and answers: a pure description, with no runtime behind it.

Tensors are described by the shared ``contract.entities.TensorSignature``. In a ``ModelSpec`` its ``shape`` holds the
dimensions of one item: without the batch dimension when the model batches (``ModelSpec.shape_of`` gives the full
shape announced to clients); -1 marks a variable dimension.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from contract.entities import TensorSignature
from inference_server.config import ModelConfig

__all__ = ["PLATFORM", "ModelSpec"]

PLATFORM = "onnxruntime_onnx"


@dataclass(frozen=True)  # no slots: cached_property needs an instance dictionary
class ModelSpec:
    """What a loaded model version accepts and answers, and the configuration it runs with.

    ``config`` is the version's one configuration, resolved against its graph: its ``max_batch_size`` is the one in
    effect (0: the model does not batch), never ``None``.
    """

    name: str
    version: str
    inputs: tuple[TensorSignature, ...]
    """Shapes per item: without the batch dimension when the model batches."""
    outputs: tuple[TensorSignature, ...]
    """Shapes per item, as ``inputs``."""
    config: ModelConfig
    platform: str = PLATFORM

    # Cached: read on every request, and the configuration is immutable once loaded.
    @functools.cached_property
    def max_batch_size(self) -> int:
        """Largest batch the version accepts; 0 when it does not batch."""
        return self.config.max_batch_size or 0

    @functools.cached_property
    def batched(self) -> bool:
        return self.max_batch_size > 0

    @functools.cached_property
    def output_index(self) -> dict[str, int]:
        """Position of each output in ``outputs``, by name."""
        return {spec.name: i for i, spec in enumerate(self.outputs)}

    def shape_of(self, tensor: TensorSignature) -> tuple[int, ...]:
        """Full shape announced in metadata: with a leading -1 when batched."""
        return (-1, *tensor.shape) if self.batched else tensor.shape
