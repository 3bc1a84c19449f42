"""The answer to one inference request, decoded to numpy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from numpy.typing import NDArray

from contract.errors import ConduitError, ErrorCode

__all__ = ["InferResult", "ParameterValue"]

ParameterValue = bool | int | float | str
"""What an Open Inference Protocol parameter can hold."""


@dataclass(frozen=True, slots=True)
class InferResult:
    """One inference response: output tensors by name plus the response's identity.

    Numeric outputs decoded from raw contents are read-only views of the received bytes (no copy is made);
    call ``.copy()`` before changing one in place. BYTES outputs are object arrays of ``bytes``.
    """

    model_name: str
    model_version: str
    id: str
    outputs: dict[str, NDArray[Any]]
    parameters: dict[str, ParameterValue] = field(default_factory=dict)

    def as_numpy(self, name: str) -> NDArray[Any]:
        """The output tensor called ``name``.

        Raises:
            ConduitError: NOT_FOUND when the response has no such output.
        """
        try:
            return self.outputs[name]
        except KeyError:
            raise ConduitError(
                ErrorCode.NOT_FOUND, f"the response has no output {name!r}; it has {sorted(self.outputs)}"
            ) from None
