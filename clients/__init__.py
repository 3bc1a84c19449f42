"""Python clients of Conduit's inference servers (any Open Inference Protocol gRPC server): numpy in, numpy out.

Example:
    >>> from clients import InferenceClient
    >>> with InferenceClient("localhost:8001", timeout=5.0) as client:
    ...     result = client.infer("iris", {"input": features})
    ...     probabilities = result.as_numpy("probabilities")

Over TLS (mutual TLS with ``cert``/``key``), authenticated by a bearer token:
    >>> credentials = tls_credentials("ca.pem", cert="client.pem", key="client-key.pem")
    >>> with InferenceClient("server.example:8001", credentials=credentials, token=token) as client:
    ...     client.infer("iris", {"input": features})

Importing this package loads grpc, protobuf and numpy only: no onnxruntime, numba or tritonclient.
"""

from clients._aio import AsyncInferenceClient
from clients._result import InferResult
from clients._sync import InferenceClient
from clients._tls import tls_credentials
from contract.errors import ConduitError, ErrorCode

__all__ = [
    "AsyncInferenceClient",
    "ConduitError",
    "ErrorCode",
    "InferResult",
    "InferenceClient",
    "tls_credentials",
]
