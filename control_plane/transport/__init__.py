"""gRPC transport of the control plane: converters and the servicer. The core (``control_plane.service``) never
imports grpc; the code -> status table is the inference server's one table (``inference_server.transport.status``)."""

__all__: list[str] = []
