"""Conduit's inference server (`conduit serve`).

Kept light on purpose: clients import ``inference_server.protocol`` (generated stubs) without loading onnxruntime or
numba. The server itself is built in ``inference_server.app``.
"""

__all__: list[str] = []
