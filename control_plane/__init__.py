"""Conduit's control plane: model registry, deployments and monitoring (not built yet)."""

__all__: list[str] = []
