"""Following the control plane: a server that serves what its pool is assigned, from a verified local cache."""

from inference_server.follower._cache import ArtifactCache
from inference_server.follower._client import ControlPlaneClient
from inference_server.follower._follower import Follower

__all__ = ["ArtifactCache", "ControlPlaneClient", "Follower"]
