"""A blocking face on the asyncio client: its coroutines run on an event loop of a thread of the client's own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from contract.client._aio import ControlPlaneClient

__all__ = ["SyncControlPlaneClient"]

T = TypeVar("T")


class SyncControlPlaneClient:
    """``ControlPlaneClient`` for code that does not run an event loop (the CLI, scripts, notebooks).

    Example:
        >>> with SyncControlPlaneClient.connect("localhost:8100", token=token) as cp:
        ...     version = cp.run(cp.api.get_version(VersionRef.parse("fraud@production")))

    ``api`` is the asyncio client; ``run`` waits for one of its calls. Safe to share between threads.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread, api: ControlPlaneClient) -> None:
        self._loop = loop
        self._thread = thread
        self.api = api

    @classmethod
    def connect(
        cls, target: str, *, token: str, root_certificates: bytes | None = None, timeout: float | None = 30.0
    ) -> SyncControlPlaneClient:
        """A client on a new channel to ``target``, with its own event loop thread (see ``ControlPlaneClient``)."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="conduit-control-plane", daemon=True)
        thread.start()

        async def open_client() -> ControlPlaneClient:
            # On the loop's own thread: a grpc.aio channel binds to the loop it is created on.
            return ControlPlaneClient.connect(target, token=token, root_certificates=root_certificates, timeout=timeout)

        api = asyncio.run_coroutine_threadsafe(open_client(), loop).result()
        return cls(loop, thread, api)

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        """Wait for one call of ``api``: its result, or its ``ConduitError``."""
        return asyncio.run_coroutine_threadsafe(call, self._loop).result()

    def close(self) -> None:
        """Close the channel and stop the loop's thread."""
        if self._loop.is_closed():
            return
        self.run(self.api.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> SyncControlPlaneClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
