"""The registry's storage: the abstract contract and its SQLAlchemy implementation."""

from control_plane.store._abstract import AbstractStore

__all__ = ["AbstractStore"]
