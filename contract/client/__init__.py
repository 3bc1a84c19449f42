"""The one typed client of the control plane API: ``ControlPlaneClient`` (asyncio) and ``SyncControlPlaneClient``
(the same calls from blocking code). Both answer ``contract.entities`` values and raise ``ConduitError``."""

from contract.client._aio import MAX_MESSAGE_BYTES, ControlPlaneClient, collect
from contract.client._files import CHUNK_BYTES
from contract.client._sync import SyncControlPlaneClient

__all__ = ["CHUNK_BYTES", "MAX_MESSAGE_BYTES", "ControlPlaneClient", "SyncControlPlaneClient", "collect"]
