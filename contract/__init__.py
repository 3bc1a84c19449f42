"""What Conduit's processes share: the contract between the control plane, the inference servers and their clients.

- ``contract.errors``: ``ConduitError`` and ``ErrorCode``, the one error family;
- ``contract.status``: the one table between error codes and gRPC statuses;
- ``contract.datatypes``: the Open Inference Protocol datatypes and their numpy equivalents.

``control_plane``, ``inference_server``, ``trainers``, ``clients``, the dashboard and reports import from here, never
from each other's internals. Kept light: nothing here loads onnxruntime, numba, SQLAlchemy or polars.
"""

__all__: list[str] = []
