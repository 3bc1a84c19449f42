"""gRPC transport of the control plane: converters and the servicer. The core (``control_plane.service``) never
imports grpc; the code -> status table is the shared one (``contract.status``)."""

__all__: list[str] = []
