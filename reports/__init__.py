"""Conduit's model reports: self-contained HTML pages built from what the registry stores about a version."""

__all__: list[str] = []
