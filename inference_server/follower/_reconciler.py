"""Reconciling a server's models with its pool's assignments: apply them, restore them from the cache, report what
serves.

Applying an assignment reuses the served set's lifecycle: the artifacts are downloaded into the cache and linked into
the cache's model repository beside their profiles, the assignment's serving options become the model's
``config.json`` there, and ``ModelManager.load_files`` loads exactly those files, warms them up and publishes them (no
directory scan decides what serves). Only once the assigned primary is ready does
routing switch to it, and only then are versions no longer assigned removed and drained, so a switch fails no
request. A restart serves the last applied assignments from the cache. A model that could not be
applied is tried again every retry interval until it takes or its assignment changes. Talking to the control plane is
the session's job (``inference_server.follower._follower``); this module only downloads through its client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from contract.client import ControlPlaneClient
from contract.entities import ArtifactRef, Assignment, LoadedModel, PoolAssignments, VersionRef
from contract.errors import ConduitError
from inference_server.follower._cache import ArtifactCache
from inference_server.models import ModelManager

__all__ = ["Reconciler"]

log = logging.getLogger("conduit.follower")


class _Failed(Exception):
    """One model's assignment could not be applied (its previous versions keep serving)."""

    def __init__(self, version: int, reason: str) -> None:
        super().__init__(reason)
        self.version = version
        self.reason = reason


def _effective(wanted: PoolAssignments) -> PoolAssignments:
    """``wanted`` with a canary equal to its primary dropped: promoting a canary assigns both the same version for
    a while, and that is simply the primary serving everything."""
    models = (
        Assignment(a.model, a.primary) if a.canary is not None and a.canary.version == a.primary.version else a
        for a in wanted.models
    )
    return PoolAssignments.of(wanted.pool, wanted.generation, models)


class Reconciler:
    """Brings the served models in line with a pool's assignments: ``restore`` from the cache, then ``apply``.

    Args:
        models: The server's models; its repository must be ``cache.repository``.
        cache: The artifact cache.
        pool: Pool whose assignments are applied.
        retry_interval: Seconds between attempts to apply what failed.
    """

    def __init__(self, models: ModelManager, cache: ArtifactCache, *, pool: str, retry_interval: float = 5.0) -> None:
        self._models = models
        self._cache = cache
        self._pool = pool
        self._retry_interval = retry_interval
        self.client: ControlPlaneClient | None = None
        """Where artifacts and profiles are downloaded from; ``None``: only what the cache holds can be applied."""
        self._applied = PoolAssignments(pool, 0)
        self._generation = 0
        self._wanted: PoolAssignments | None = None
        self._failures: dict[str, _Failed] = {}
        self._lock = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None
        self.applied_event = asyncio.Event()
        """Set after every apply (the session reports at once)."""
        self.assigned = asyncio.Event()
        """Set once there is an assignment to serve: restored from the cache, or the first one applied (partly or
        wholly; what failed is retried and reported). Until then the server is live but not ready."""

    @property
    def generation(self) -> int:
        """The assignments generation fully applied (0: none yet)."""
        return self._generation

    @property
    def applying(self) -> bool:
        """Whether an apply is under way."""
        return self._lock.locked()

    def failures(self) -> dict[str, str]:
        """Models whose assignment is not (fully) applied, with the reason."""
        return {name: failure.reason for name, failure in self._failures.items()}

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
                await asyncio.to_thread(self._cache.install_config, name, assignment.unseen_categories)
        for name in sorted(assigned):
            try:
                files = self._cache.model_files(name)
                if files:  # none cached: nothing to serve, and the failure is reported below
                    await self._models.load_files(name, files, self._cache.config_file(name))
            except ConduitError as exc:  # which versions failed, and why, is read from the index below
                log.warning("model %s: %s", name, exc.message)
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
            self.assigned.set()
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

    async def apply(self, wanted: PoolAssignments) -> None:
        """Bring the served models in line with ``wanted``; one model failing leaves the others (and itself) serving.

        Raises:
            ConduitError: UNAVAILABLE when an artifact must be downloaded and there is no control plane client.
        """
        wanted = _effective(wanted)
        async with self._lock:
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
            self.assigned.set()
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
        await asyncio.to_thread(self._cache.install_config, name, assignment.unseen_categories)
        config = self._cache.config_file(name)
        load_error = ""
        try:
            await self._models.load_files(name, self._cache.model_files(name), config, force=True)
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
                await self._models.load_files(name, self._cache.model_files(name), config, force=False)
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
            found = await self.client.training_profile(VersionRef(name, version=version))
        except ConduitError as exc:
            log.warning("model %s version %d serves without data sketches: no profile (%s)", name, version, exc.message)
            return
        if found is not None:
            profile, target = found
            await asyncio.to_thread(self._cache.install_profile, name, version, {**profile.to_json(), "target": target})

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
            async with contextlib.aclosing(self.client.artifact(VersionRef(name, version=ref.version))) as chunks:
                await self._cache.store(ref, chunks)
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
            await asyncio.sleep(self._retry_interval)
            if not self._failures or self._wanted is None:
                return
            try:
                await self.apply(self._wanted)
            except Exception:  # e.g. the state file cannot be written: try again next time
                log.exception("retrying failed models")

    async def converge(self) -> None:
        """Apply again the assignment of every model with an assigned version that is not ready (unloaded, failed or
        evicted behind the reconciler's back): what serves is what the control plane assigned, within one heartbeat.

        Models already failing are left to the retry loop.
        """
        if self.applying or self._wanted is None:
            return
        ready = {(entry.name, entry.version) for entry in self._models.index() if entry.state == "READY"}
        drifted: dict[str, _Failed] = {}
        for assignment in self._applied.models:
            if assignment.model in self._failures:
                continue
            for ref in assignment.artifacts():
                if (assignment.model, str(ref.version)) not in ready:
                    drifted[assignment.model] = _Failed(ref.version, f"version {ref.version} was not ready")
                    break
        if not drifted:
            return
        for name, failure in sorted(drifted.items()):
            log.warning("model %s: %s although assigned; applying its assignment again", name, failure.reason)
        self._failures.update(drifted)
        await self.apply(self._wanted)

    def start_retries(self) -> None:
        """Retry what ``restore`` could not apply, without waiting for an assignment."""
        if self._failures:
            self._schedule_retry()

    async def close(self) -> None:
        """Stop retrying."""
        if self._retry is not None:
            self._retry.cancel()
            await asyncio.gather(self._retry, return_exceptions=True)
            self._retry = None

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
