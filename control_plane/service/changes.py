"""In-process notification that a pool's assignments may have changed, so watches wake at once."""

from __future__ import annotations

import asyncio

__all__ = ["Changes"]


class Changes:
    """Every mutation that can change what a pool serves calls ``notify``; watches wait on it.

    A waiter takes a ``ticket`` *before* reading the state it compares against, then waits on that ticket: a change
    notified in between has already set the ticket, so it is never missed.
    """

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """Set once the server stops: watches end instead of waiting."""
        return self._closed

    def ticket(self) -> asyncio.Event:
        """The event the next ``notify`` (or ``close``) sets."""
        if self._event is None:
            # Created on first use, on the running loop.
            self._event = asyncio.Event()
            if self._closed:
                self._event.set()
        return self._event

    def notify(self) -> None:
        """Wake every waiter; later waiters get a fresh ticket."""
        if self._event is not None:
            self._event.set()
            self._event = None

    def close(self) -> None:
        """Wake every waiter for good."""
        self._closed = True
        if self._event is not None:
            self._event.set()
