"""Following the control plane: a server that serves what its pool is assigned, from a verified local cache.

``Reconciler`` applies assignments (and restores them from the ``ArtifactCache``); ``Follower`` is the session with
the control plane that feeds it.
"""

from inference_server.follower._cache import ArtifactCache
from inference_server.follower._follower import Follower
from inference_server.follower._reconciler import Reconciler

__all__ = ["ArtifactCache", "Follower", "Reconciler"]
