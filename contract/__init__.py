"""What Conduit's processes share: the contract between the control plane, the inference servers and their clients.

- ``contract.errors``: ``ConduitError`` and ``ErrorCode``, the one error family;
- ``contract.status``: the one table between error codes and gRPC statuses;
- ``contract.datatypes``: the Open Inference Protocol datatypes and their numpy equivalents;
- ``contract.tokens``: bearer tokens, made and hashed the one way every process checks them;
- ``contract.metrics``: the metric names and labels servers push and the control plane keeps;
- ``contract.entities``: the plain values of the registry and its API (models, versions, signatures, lineage,
  data sets and profiles, deployments, assignments, servers, users, alerts, jobs, monitoring reports, …);
- ``contract.wire``: each entity to and from its protobuf message, one converter per message;
- ``contract.signature``: an ONNX graph's inputs and outputs as tensor signatures;
- ``contract.client``: the one typed client of the control plane API;
- ``contract.outbound``: where requests a user's settings aim (webhooks, mail, data imports) may go, and one HTTP
  request made under that rule.

``control_plane``, ``inference_server``, ``trainers``, ``clients``, the dashboard and reports import from here, never
from each other's internals. Importing the package loads nothing heavy: onnx is imported by ``contract.signature``
alone, and nothing here loads onnxruntime, numba, SQLAlchemy or polars.
"""

__all__: list[str] = []
