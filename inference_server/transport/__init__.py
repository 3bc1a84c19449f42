"""gRPC transport of the inference server: converters, servicers and the error-status table."""

__all__: list[str] = []
