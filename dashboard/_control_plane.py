"""The dashboard's one connection to the control plane: a ``grpc.aio`` channel, every call made with the token of the
person looking at the page, and failures turned into ``ConduitError`` by the clients' one error rule."""

from __future__ import annotations

from typing import Any

import grpc

from clients._channel import channel_options, error_from_rpc
from control_plane.protocol import control_plane_pb2_grpc as cp_grpc

__all__ = ["ControlPlane"]

# The generated stub has no type hints (see clients._channel).
_Stub: Any = cp_grpc.ControlPlaneStub
_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class ControlPlane:
    """Unary calls of ``conduit.control.v1.ControlPlane`` on behalf of a token.

    Create it inside the running event loop (a ``grpc.aio`` channel binds to the loop it is created on).

    Args:
        target: Control plane address, e.g. ``"localhost:8100"``.
        root_certificates: PEM of the CA that signed the control plane's certificate; ``None``: plaintext.
        timeout: Deadline of each call in seconds.
    """

    def __init__(self, target: str, *, root_certificates: bytes | None = None, timeout: float = 15.0) -> None:
        options = channel_options(_MAX_MESSAGE_BYTES, ())
        if root_certificates is None:
            self._channel = grpc.aio.insecure_channel(target, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.aio.secure_channel(target, credentials, options=options)
        self._stub = _Stub(self._channel)
        self._timeout = timeout

    async def call(self, token: str, method: str, request: Any) -> Any:
        """Call ``method`` with ``request`` as the owner of ``token``.

        Raises:
            ConduitError: with the code of the gRPC status (UNAUTHENTICATED for a bad token, PERMISSION_DENIED when
                the token's role may not make the call, ...).
        """
        metadata = (("authorization", f"Bearer {token}"),)
        try:
            return await getattr(self._stub, method)(request, timeout=self._timeout, metadata=metadata)
        except grpc.RpcError as error:
            raise error_from_rpc(method, error) from error

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()
