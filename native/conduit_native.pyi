"""Conduit's compiled gRPC front (Rust: tonic, rustls, PyO3)."""

UNARY: int
"""A unary ModelInfer: ``data`` is the request, the answer a serialized ModelInferResponse."""
OPEN: int
"""A ModelStreamInfer stream opens: no data; ``reply(b"")`` lets it go on, ``fail`` refuses it."""
MESSAGE: int
"""A request of a stream: ``data`` is the request, the answer a serialized ModelStreamInferResponse."""
CANCEL: int
"""The call or stream ``id`` is over (its client cancelled, or its deadline passed): nothing to answer."""

class Call:
    """One call waiting for Python: answer it exactly once, with ``reply`` or ``fail``."""

    @property
    def kind(self) -> int: ...
    @property
    def id(self) -> int: ...
    @property
    def data(self) -> bytes: ...
    @property
    def authorization(self) -> str | None: ...
    @property
    def timeout_s(self) -> float | None: ...
    def reply(self, data: bytes) -> None: ...
    def fail(self, code: int, message: str) -> None: ...

class Front:
    """The gRPC front of one server process."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        reuse_port: bool = False,
        threads: int = 2,
        max_message_bytes: int = ...,
        max_queued_bytes: int = ...,
        stream_window_bytes: int = ...,
        stream_read_ahead: int = 1024,
    ) -> None: ...
    def set_tls(self, cert: bytes, key: bytes, client_ca: bytes | None = None) -> None:
        """Serve TLS (before ``start``), or replace the certificate for the next connections (after).

        Raises:
            ValueError: the PEM files do not hold a usable certificate, key or CA.
        """
    def start(self, internal: str) -> int:
        """Listen and serve; returns the bound port. ``internal``: the grpc.aio server's Unix socket.

        Raises:
            OSError: the address cannot be bound.
        """
    def wake_fd(self) -> int: ...
    def queued(self) -> int:
        """How many calls wait for Python now."""
    def take(self) -> list[Call]: ...
    def stop(self, grace_s: float) -> bool:
        """Stop listening and finish the calls in flight for up to ``grace_s``; True when all finished."""
