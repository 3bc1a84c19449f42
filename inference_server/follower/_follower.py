"""The follower: keeps a server's models in line with the assignments of its pool on the control plane.

Applying an assignment reuses the repository lifecycle: the artifacts are downloaded into the cache, linked into the
cache's model repository, and ``ModelManager.load`` loads, warms up and publishes them. Only once the assigned
primary is ready does routing switch to it, and only then are versions no longer assigned removed and drained, so a
switch fails no request. While the control plane is away the server keeps serving what it has, and a restart
serves the last applied assignments from the cache. A model that could not be applied is tried again every heartbeat
interval until it takes or its assignment changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable

from contract.entities import ArtifactRef, Assignment, LoadedModel, PoolAssignments
from contract.errors import ConduitError, ErrorCode
from inference_server.follower._cache import ArtifactCache
from inference_server.follower._client import ControlPlaneClient
from inference_server.models import ModelManager

__all__ = ["Follower"]

log = logging.getLogger("conduit.follower")

# Heartbeats in a row that must find the pool's generation ahead of what the watch delivered before the watch counts
# as stuck: one can overlap with a change on its way down the stream.
STUCK_HEARTBEATS = 2


class _Failed(Exception):
    """One model's assignment could not be applied (its previous versions keep serving)."""

    def __init__(self, version: int, reason: str) -> None:
        super().__init__(reason)
        self.version = version
        self.reason = reason


class _WatchStuck(Exception):
    """The heartbeats saw the pool's generation move while the assignment stream delivered nothing."""


def _effective(wanted: PoolAssignments) -> PoolAssignments:
    """``wanted`` with a canary equal to its primary dropped: promoting a canary assigns both the same version for
    a while, and that is simply the primary serving everything."""
    models = (
        Assignment(a.model, a.primary) if a.canary is not None and a.canary.version == a.primary.version else a
        for a in wanted.models
    )
    return PoolAssignments.of(wanted.pool, wanted.generation, models)


class Follower:
    """Follows the assignments of ``pool``: ``restore`` before the server listens, then ``run`` as a task.

    Args:
        models: The server's models; its repository must be ``cache.repository``.
        cache: The artifact cache.
        client: The control plane connection; ``None`` until ``run`` (``restore`` needs none).
        pool: Pool whose assignments are followed.
        address: host:port registered for callers.
        name: Stable name registered with the control plane.
        heartbeat_interval: Seconds between heartbeats.
        backoff_initial: Seconds before the first reconnection; doubles on every failed attempt.
        backoff_max: Longest wait between attempts.
        jitter: Draws in [0, 1) that spread reconnections of many servers apart.
    """

    def __init__(
        self,
        models: ModelManager,
        cache: ArtifactCache,
        client: ControlPlaneClient | None,
        *,
        pool: str,
        address: str,
        name: str,
        heartbeat_interval: float = 5.0,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._models = models
        self._cache = cache
        self.client = client
        self._pool = pool
        self.address = address
        self._name = name
        self._heartbeat_interval = heartbeat_interval
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._jitter = jitter
        self._applied = PoolAssignments(pool, 0)
        self._generation = 0
        self._wanted: PoolAssignments | None = None
        self._failures: dict[str, _Failed] = {}
        self._server_id: str | None = None
        self._connected = False
        self._apply_lock = asyncio.Lock()
        self._report_now = asyncio.Event()
        self._retry: asyncio.Task[None] | None = None
        # The generation the assignment stream delivered last, and how many heartbeats in a row found the pool ahead.
        self._received = 0
        self._behind = 0
        self._watch_stuck = asyncio.Event()
        self.applied_event = asyncio.Event()

    @property
    def generation(self) -> int:
        """The assignments generation fully applied (0: none yet)."""
        return self._generation

    @property
    def connected(self) -> bool:
        """Whether the assignment stream is open (it answered at least once since the last failure)."""
        return self._connected

    @property
    def server_id(self) -> str | None:
        """The id the control plane gave this server; ``None`` until registered."""
        return self._server_id

    def failures(self) -> dict[str, str]:
        """Models whose assignment is not (fully) applied, with the reason."""
        return {name: failure.reason for name, failure in self._failures.items()}

    # -- start-up from the cache ---

    async def restore(self) -> None:
        """Serve the assignments applied before the last stop, from the cache: no control plane needed.

        A version that is not ready afterwards (artifact gone, load failed) is reported as a failure, and applied
        again once ``run`` follows the control plane.
        """
        state = await asyncio.to_thread(self._cache.load_state)
        if state is not None and state.pool != self._pool:
            log.warning("cache holds assignments of pool %r, not %r: starting empty", state.pool, self._pool)
            state = None
        if state is not None:
            state = _effective(state)  # saved by a version that kept a canary equal to the primary
        assigned = state.by_model() if state is not None else {}
        for name in self._cache.models() - set(assigned):
            await asyncio.to_thread(self._cache.remove, name)  # left over by an apply that did not finish
        for name, assignment in assigned.items():
            with contextlib.suppress(ConduitError):  # a name that cannot be a directory is reported below
                wanted = {ref.version for ref in assignment.artifacts()}
                for version in self._cache.installed(name) - wanted:
                    await asyncio.to_thread(self._cache.remove, name, version)
                for ref in assignment.artifacts():
                    if self._cache.has(ref):
                        await asyncio.to_thread(self._cache.install, name, ref)
        await self._models.load_all()
        reasons = {(entry.name, entry.version): entry.reason for entry in self._models.index()}
        for name, assignment in assigned.items():
            ready = set(self._models.versions(name))
            self._route(assignment, ready)
            for ref in assignment.artifacts():
                if str(ref.version) not in ready:
                    reason = reasons.get((name, str(ref.version))) or "its artifact is not in the cache"
                    # The primary's failure is the one to report: without it the model does not serve as assigned.
                    self._failures.setdefault(
                        name, _Failed(ref.version, f"version {ref.version} not restored: {reason}")
                    )
        if state is not None:
            # Applied, so an unchanged assignment costs nothing once the control plane is back; the failures above
            # are applied again all the same.
            self._applied = state
            self._wanted = state
            self._generation = state.generation
            log.info(
                "restored generation %d of pool %s from the cache: %s",
                state.generation,
                self._pool,
                ", ".join(f"{a.model} v{a.primary.version}" for a in assigned.values()) or "no models",
            )

    # -- applying assignments ---

    async def apply(self, wanted: PoolAssignments) -> None:
        """Bring the served models in line with ``wanted``; one model failing leaves the others (and itself) serving.

        Raises:
            ConduitError: UNAVAILABLE when an artifact must be downloaded and there is no control plane client.
        """
        wanted = _effective(wanted)
        async with self._apply_lock:
            self._wanted = wanted
            applied = self._applied.by_model()
            failures: dict[str, _Failed] = {}
            for name, assignment in sorted(wanted.by_model().items()):
                if applied.get(name) == assignment and name not in self._failures:
                    continue
                try:
                    warning = await self._apply_model(assignment)
                except _Failed as failure:
                    failures[name] = failure
                    log.warning("model %s: keeps serving its previous versions: %s", name, failure.reason)
                    continue
                except ConduitError as exc:  # e.g. a model name that cannot be a directory
                    failures[name] = _Failed(assignment.primary.version, exc.message)
                    log.warning("model %s: cannot be applied: %s", name, exc.message)
                    continue
                except Exception as exc:  # one model's surprise must not stop the others
                    log.exception("model %s: unexpected error while applying its assignment", name)
                    failures[name] = _Failed(assignment.primary.version, f"unexpected error: {exc}")
                    continue
                applied[name] = assignment
                if warning is not None:
                    failures[name] = warning
                log.info(
                    "model %s: serving version %d%s",
                    name,
                    assignment.primary.version,
                    f", canary {assignment.canary.version} at {assignment.canary_percent:g}%"
                    if assignment.canary is not None and warning is None
                    else "",
                )
            for name in sorted((set(applied) | self._cache.models()) - set(wanted.by_model())):
                await self._remove_model(name)
                applied.pop(name, None)
            self._failures = failures
            if not failures:
                self._generation = wanted.generation
            previous, self._applied = self._applied, PoolAssignments.of(wanted.pool, self._generation, applied.values())
            await asyncio.to_thread(self._cache.save_state, self._applied)
            # The artifacts of the previous assignments stay: a rollback then needs no download.
            keep = {ref.sha256 for a in [*previous.models, *applied.values(), *wanted.models] for ref in a.artifacts()}
            await asyncio.to_thread(self._cache.prune, keep)
            self.applied_event.set()
            self._report_now.set()
            if failures:
                self._schedule_retry()

    async def _apply_model(self, assignment: Assignment) -> _Failed | None:
        """Download, install, load, switch routing, then drop what is no longer assigned.

        Returns:
            A failure of the canary alone (the primary serves every request), or ``None``.

        Raises:
            _Failed: the primary could not be made ready; nothing changed for callers.
        """
        name = assignment.model
        for ref in assignment.artifacts():
            if not self._cache.has(ref):
                await self._download(name, ref)
            await asyncio.to_thread(self._cache.install, name, ref)
            if not self._cache.has_profile(name, ref.version):
                await self._fetch_profile(name, ref.version)
        load_error = ""
        try:
            await self._models.load(name, force=True)
        except ConduitError as exc:
            load_error = exc.message  # a version failed; which one matters, and is read from what is ready below
        ready = set(self._models.versions(name))
        primary = assignment.primary.version
        if str(primary) not in ready:
            raise _Failed(primary, f"version {primary} did not load: {load_error or 'not ready'}")
        self._route(assignment, ready)
        # The switch is done: versions no longer assigned leave the repository, and the reload drains them.
        wanted = {ref.version for ref in assignment.artifacts()}
        stale = self._cache.installed(name) - wanted
        for version in stale:
            await asyncio.to_thread(self._cache.remove, name, version)
        if stale:
            with contextlib.suppress(ConduitError):  # a canary that failed again is reported below
                await self._models.load(name, force=False)
        canary = assignment.canary
        if canary is not None and str(canary.version) not in ready:
            return _Failed(canary.version, f"canary version {canary.version} did not load: {load_error}")
        return None

    async def _fetch_profile(self, name: str, version: int) -> None:
        """Put the version's training data profile beside it, for its data sketches. Without one (no lineage, or the
        control plane would not say) the version serves all the same, without sketches; it is asked again at the
        next apply of the model."""
        if self.client is None:
            return
        try:
            profile = await self.client.training_profile(name, version)
        except ConduitError as exc:
            log.warning("model %s version %d serves without data sketches: no profile (%s)", name, version, exc.message)
            return
        if profile is not None:
            await asyncio.to_thread(self._cache.install_profile, name, version, profile)

    def _route(self, assignment: Assignment, ready: set[str]) -> None:
        canary = assignment.canary
        if canary is not None and str(canary.version) in ready:
            self._models.set_routing(
                assignment.model, str(assignment.primary.version), str(canary.version), assignment.canary_percent
            )
        else:
            self._models.set_routing(assignment.model, str(assignment.primary.version))

    async def _download(self, name: str, ref: ArtifactRef) -> None:
        if self.client is None:
            raise _Failed(ref.version, "artifact not cached and no control plane to download it from")
        log.info(
            "model %s: downloading version %d (%d bytes, sha256 %s)", name, ref.version, ref.size_bytes, ref.sha256
        )
        try:
            await self._cache.store(ref, self.client.download(name, ref.version))
        except ConduitError as exc:
            raise _Failed(ref.version, f"download of version {ref.version} failed: {exc.message}") from None

    async def _remove_model(self, name: str) -> None:
        log.info("model %s: no longer assigned to pool %s, unloading", name, self._pool)
        with contextlib.suppress(ConduitError):  # NOT_FOUND: it never loaded
            await self._models.unload(name)
        await asyncio.to_thread(self._cache.remove, name)

    def _schedule_retry(self) -> None:
        # One retry loop at a time. It keeps going while anything fails, so an apply that fails inside it (and finds
        # it running) needs no new one.
        if self._retry is None or self._retry.done():
            self._retry = asyncio.get_running_loop().create_task(self._retry_failed())

    async def _retry_failed(self) -> None:
        # A failed download or load is retried on the heartbeat's rhythm until it takes or the assignment changes
        # (the latest wanted assignments are the ones retried).
        while True:
            await asyncio.sleep(self._heartbeat_interval)
            if not self._failures or self._wanted is None:
                return
            try:
                await self.apply(self._wanted)
            except Exception:  # e.g. the state file cannot be written: try again next time
                log.exception("retrying failed models")

    # -- following the control plane ---

    async def run(self) -> None:
        """Register, watch the pool's assignments and apply them, heartbeat; reconnect whenever the link breaks.

        Runs until cancelled. The server keeps serving whatever it has while the control plane is unreachable.
        """
        heartbeats = asyncio.get_running_loop().create_task(self._heartbeats())
        if self._failures:  # left by restore: the control plane may stay away, the retries need not wait for it
            self._schedule_retry()
        try:
            await self._follow()
        finally:
            for task in (heartbeats, self._retry):
                if task is not None:
                    task.cancel()
            await asyncio.gather(heartbeats, *([self._retry] if self._retry else []), return_exceptions=True)

    async def _registered(self, client: ControlPlaneClient) -> str:
        if self._server_id is None:
            self._server_id = await client.register(self._pool, self.address, self._name)
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
                self._watch_stuck.clear()
                self._behind = 0
                stream = client.watch(self._pool, server_id)
                try:
                    while (assignments := await self._next(stream)) is not None:
                        if warned:
                            log.info("control plane reachable again")
                        warned = False
                        self._connected = True
                        delay = self._backoff_initial
                        self._received = assignments.generation
                        log.info("pool %s: assignments generation %d", assignments.pool, assignments.generation)
                        await self.apply(assignments)
                finally:
                    await stream.aclose()
                reason = "the assignment stream ended"
            except _WatchStuck:
                reason = "the assignment stream delivered no change while the heartbeats saw one"
            except ConduitError as exc:
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
        if pool_generation > self._received and not self._apply_lock.locked():
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

    def reports(self) -> list[LoadedModel]:
        """The model versions this server knows, with their states, as a heartbeat carries them."""
        reports = [
            LoadedModel(entry.name, int(entry.version) if entry.version else 0, entry.state, entry.reason)
            for entry in self._models.index()
        ]
        known = {(report.model, report.version) for report in reports}
        for name, failure in self._failures.items():
            if (name, failure.version) not in known:
                reports.append(LoadedModel(name, failure.version, "UNAVAILABLE", failure.reason))
        return reports

    async def _heartbeats(self) -> None:
        client = self.client
        assert client is not None
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._heartbeat_interval):
                    await self._report_now.wait()
            self._report_now.clear()
            if self._server_id is None:
                continue
            try:
                pool_generation = await client.heartbeat(self._server_id, self.reports(), self._generation)
            except ConduitError as exc:
                if exc.code is ErrorCode.NOT_FOUND:
                    self._server_id = None
                    with contextlib.suppress(ConduitError):
                        await self._registered(client)
                log.debug("heartbeat failed: %s", exc.message)
            else:
                self._check_watch(pool_generation)
