"""Conduit's trainers: scikit-learn models exported to ONNX with a parity check (``trainers.onnx_export``)."""

__all__: list[str] = []
