"""The follower's session with the control plane: register, watch the pool's assignments and hand them to the
reconciler, heartbeat; reconnect whenever the link breaks. While the control plane is away the server keeps serving
what it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable

from contract.client import ControlPlaneClient
from contract.entities import Callers, PoolAssignments
from contract.errors import ConduitError, ErrorCode
from inference_server.follower._reconciler import Reconciler

__all__ = ["Follower"]

log = logging.getLogger("conduit.follower")

# What the control plane answers a token it will never accept (unknown, disabled, without the server role, or not
# the owner of this server's name): ``run`` ends with it rather than retry.
REFUSED = frozenset({ErrorCode.UNAUTHENTICATED, ErrorCode.PERMISSION_DENIED})

# Heartbeats in a row that must find the pool's generation ahead of what the watch delivered before the watch counts
# as stuck: one can overlap with a change on its way down the stream.
STUCK_HEARTBEATS = 2


class _WatchStuck(Exception):
    """The heartbeats saw the pool's generation move while the assignment stream delivered nothing."""


class Follower:
    """Follows the assignments of ``pool``: ``reconciler.restore`` before the server listens, then ``run`` as a task.

    Args:
        reconciler: Applies what the control plane assigns.
        client: The control plane connection; ``None`` until ``run``.
        pool: Pool whose assignments are followed.
        address: host:port registered for callers.
        name: Stable name registered with the control plane.
        heartbeat_interval: Seconds between heartbeats.
        backoff_initial: Seconds before the first reconnection; doubles on every failed attempt.
        backoff_max: Longest wait between attempts.
        jitter: Draws in [0, 1) that spread reconnections of many servers apart.
        on_callers: Given the control plane's callers (the token hashes of its enabled users) whenever they change:
            fetched at every connection and every heartbeat, so a disabled user stops working within one interval.
        callers_digest: The digest of the callers the server already holds (from its cache), if any.
    """

    def __init__(
        self,
        reconciler: Reconciler,
        client: ControlPlaneClient | None,
        *,
        pool: str,
        address: str,
        name: str,
        heartbeat_interval: float = 5.0,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        jitter: Callable[[], float] = random.random,
        on_callers: Callable[[Callers], Awaitable[None]] | None = None,
        callers_digest: str = "",
    ) -> None:
        self.reconciler = reconciler
        self.client = client
        self._pool = pool
        self.address = address
        self._name = name
        self._heartbeat_interval = heartbeat_interval
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._jitter = jitter
        self._server_id: str | None = None
        self._connected = False
        # The generation the assignment stream delivered last, and how many heartbeats in a row found the pool ahead.
        self._received = 0
        self._behind = 0
        self._watch_stuck = asyncio.Event()
        self._on_callers = on_callers
        self._callers_digest = callers_digest
        self._callers_warned = False

    @property
    def client(self) -> ControlPlaneClient | None:
        """The control plane connection, which the reconciler downloads through too."""
        return self.reconciler.client

    @client.setter
    def client(self, client: ControlPlaneClient | None) -> None:
        self.reconciler.client = client

    @property
    def generation(self) -> int:
        """The assignments generation fully applied (0: none yet)."""
        return self.reconciler.generation

    @property
    def connected(self) -> bool:
        """Whether the assignment stream is open (it answered at least once since the last failure)."""
        return self._connected

    @property
    def server_id(self) -> str | None:
        """The id the control plane gave this server; ``None`` until registered."""
        return self._server_id

    async def run(self) -> None:
        """Register, watch the pool's assignments and apply them, heartbeat; reconnect whenever the link breaks.

        Runs until cancelled. The server keeps serving whatever it has while the control plane is unreachable.

        Raises:
            ConduitError: UNAUTHENTICATED or PERMISSION_DENIED when the control plane refuses the server's token
                (registering, or watching its assignments): no retry would succeed.
        """
        heartbeats = asyncio.get_running_loop().create_task(self._heartbeats())
        # What restore left failing: the control plane may stay away, the retries need not wait for it.
        self.reconciler.start_retries()
        try:
            await self._follow()
        finally:
            heartbeats.cancel()
            await asyncio.gather(heartbeats, return_exceptions=True)
            await self.reconciler.close()

    async def _registered(self, client: ControlPlaneClient) -> str:
        if self._server_id is None:
            self._server_id = (await client.register_server(self._pool, self.address, self._name)).record.id
            log.info("registered with the control plane as server %s (pool %s)", self._server_id, self._pool)
        return self._server_id

    async def _follow(self) -> None:
        client = self.client
        if client is None:
            raise ConduitError(ErrorCode.FAILED_PRECONDITION, "the follower runs only with a control plane client")
        delay = self._backoff_initial
        warned = False  # one warning per outage; the attempts during it are logged at info
        while True:
            try:
                server_id = await self._registered(client)
                await self._refresh_callers(client)
                self._watch_stuck.clear()
                self._behind = 0
                stream = client.watch_assignments(self._pool, server_id)
                try:
                    while (assignments := await self._next(stream)) is not None:
                        if warned:
                            log.info("control plane reachable again")
                        warned = False
                        self._connected = True
                        delay = self._backoff_initial
                        self._received = assignments.generation
                        log.info("pool %s: assignments generation %d", assignments.pool, assignments.generation)
                        await self.reconciler.apply(assignments)
                finally:
                    await stream.aclose()
                reason = "the assignment stream ended"
            except _WatchStuck:
                reason = "the assignment stream delivered no change while the heartbeats saw one"
            except ConduitError as exc:
                if exc.code in REFUSED:
                    # Not an outage: the same token would be refused on every attempt, for ever.
                    raise ConduitError(exc.code, f"the control plane refused this server: {exc.message}") from None
                if exc.code is ErrorCode.NOT_FOUND:
                    self._server_id = None  # the control plane forgot this server: register again
                reason = exc.message
            except Exception as exc:  # the follower must outlive anything one attempt throws
                log.exception("follower attempt failed")
                reason = str(exc)
            self._connected = False
            wait = delay * (0.5 + self._jitter())
            if not warned:
                log.warning("no control plane (%s); serving the last known models, retrying", reason)
                warned = True
            else:
                log.info("control plane still unreachable (%s); next attempt in %.1fs", reason, wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self._backoff_max)

    async def _next(self, stream: AsyncIterator[PoolAssignments]) -> PoolAssignments | None:
        """The next assignments from ``stream``; ``None`` once it ended.

        Raises:
            _WatchStuck: the heartbeats found the stream stuck. Only the wait for the stream is abandoned, never an
                apply in progress.
        """

        async def receive() -> PoolAssignments | None:
            return await anext(stream, None)

        received = asyncio.get_running_loop().create_task(receive())
        stuck = asyncio.get_running_loop().create_task(self._watch_stuck.wait())
        try:
            await asyncio.wait({received, stuck}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stuck.cancel()
            if not received.done():
                received.cancel()
                await asyncio.gather(received, return_exceptions=True)
        if received.cancelled():
            raise _WatchStuck
        return received.result()

    def _check_watch(self, pool_generation: int) -> None:
        # gRPC keepalive notices a control plane that went silent; this notices a stream that stays open and quiet
        # while the pool changes (a change notification lost on the way). While an apply runs the stream is not
        # read, so a lag then is expected.
        if pool_generation > self._received and not self.reconciler.applying:
            self._behind += 1
        else:
            self._behind = 0
        if self._behind >= STUCK_HEARTBEATS:
            log.warning(
                "pool %s is at generation %d but the assignment stream stopped at %d: reopening it",
                self._pool,
                pool_generation,
                self._received,
            )
            self._behind = 0
            self._watch_stuck.set()

    async def _refresh_callers(self, client: ControlPlaneClient) -> None:
        if self._on_callers is None:
            return
        try:
            callers = await client.list_callers(self._callers_digest)
        except ConduitError as exc:  # the callers known so far keep working; the next heartbeat asks again
            if exc.code in (ErrorCode.UNIMPLEMENTED, ErrorCode.PERMISSION_DENIED) and not self._callers_warned:
                # Not a passing outage: say once why callers may be refused.
                log.warning("cannot fetch the control plane's callers (%s): %s", exc.code.name, exc.message)
                self._callers_warned = True
            else:
                log.debug("callers not refreshed: %s", exc.message)
            return
        if callers.unchanged:
            return
        await self._on_callers(callers)
        self._callers_digest = callers.digest
        log.info("callers: %d tokens of the control plane's enabled users", len(callers.tokens))

    async def _heartbeats(self) -> None:
        client = self.client
        assert client is not None
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._heartbeat_interval):
                    await self.reconciler.applied_event.wait()
            self.reconciler.applied_event.clear()
            await self.reconciler.converge()
            await self._refresh_callers(client)
            if self._server_id is None:
                continue
            try:
                pool_generation = await client.heartbeat(self._server_id, self.reconciler.reports(), self.generation)
            except ConduitError as exc:
                if exc.code is ErrorCode.NOT_FOUND:
                    self._server_id = None
                    with contextlib.suppress(ConduitError):
                        await self._registered(client)
                log.debug("heartbeat failed: %s", exc.message)
            else:
                self._check_watch(pool_generation)
