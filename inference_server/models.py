"""Model lifecycle: load, warm up, mark ready, switch traffic, drain the old; and the set of served versions.

Versions are loaded from model files by path (``load_files``), or from what a ``ModelRepository`` directory holds
(``load``, ``sync``). A version is published only after its session loaded and ran a warm-up batch; the version it
replaces keeps serving until then and drains its queue afterwards. A load that fails leaves whatever was serving in
place and records the reason for the repository index.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from contract.errors import ConduitError, ErrorCode
from inference_server.batcher import BatchObserver, Clock, DynamicBatcher
from inference_server.config import ModelConfig, read_model_config
from inference_server.profile import DataProfile, find_profile, read_profile
from inference_server.repository import MODEL_FILE, ModelRepository
from inference_server.runtime import OnnxModel
from inference_server.spec import ModelSpec
from inference_server.stats import ModelStats
from inference_server.types import IndexEntry
from inference_server.validation import known_categories

__all__ = ["ModelManager", "ServedVersion", "VersionState"]

log = logging.getLogger(__name__)

Fingerprint = tuple[int, int, int, int]
StatsFactory = Callable[[str, str], ModelStats]
ObserverFactory = Callable[[ModelSpec, DataProfile | None], Sequence[BatchObserver]]
"""The observers of a loaded version's batches, given its spec and its training data profile (if it has one)."""


class VersionState(enum.Enum):
    LOADING = "LOADING"
    READY = "READY"
    UNAVAILABLE = "UNAVAILABLE"


@dataclass(slots=True)
class ServedVersion:
    """A model version that is taking traffic."""

    spec: ModelSpec
    batcher: DynamicBatcher
    fingerprint: Fingerprint
    known_categories: Mapping[str, frozenset[str]] | None = None
    """Per BYTES input, the categories it accepts when the version refuses unseen ones (``None``: it refuses none)."""

    @property
    def stats(self) -> ModelStats:
        """The version's counters (kept by its batcher, carried over to the batcher of a reload)."""
        return self.batcher.stats


@dataclass(slots=True)
class _Status:
    state: VersionState
    reason: str = ""
    failed_fingerprint: Fingerprint | None = None


def _fingerprint(model_file: Path, config_file: Path | None) -> Fingerprint:
    model = model_file.stat()
    config = config_file.stat() if config_file is not None and config_file.exists() else None
    return (
        model.st_mtime_ns,
        model.st_size,
        config.st_mtime_ns if config else 0,
        config.st_size if config else 0,
    )


def _load(
    name: str, version: str, path: Path, config: ModelConfig, clock: Clock
) -> tuple[OnnxModel, dict[int, int], DataProfile | None]:
    """Load and warm up on a worker thread: onnxruntime session creation blocks for a while."""
    model = OnnxModel(name, version, path, config)
    return model, model.warm_up(clock), _profile(name, version, path.parent)


def _profile(name: str, version: str, version_dir: Path) -> DataProfile | None:
    # Monitoring is no reason to refuse a model: a broken profile only costs the version its sketches.
    found = find_profile(version_dir)
    if found is None:
        return None
    try:
        return read_profile(found)
    except ConduitError as exc:
        log.warning("model %s version %s serves without data sketches: %s", name, version, exc.message)
        return None


@dataclass(frozen=True, slots=True)
class _Route:
    """Where requests without a version go, as the control plane assigned it."""

    primary: str
    canary: str
    canary_fraction: float


class ModelManager:
    """The model versions a server serves, their states, and where requests without a version go.

    ``repository`` is the directory ``load``, ``sync`` and ``index`` read (through a ``ModelRepository``); versions
    can also be loaded from files anywhere with ``load_files``.

    Requests that name no version go to the newest ready version, unless ``set_routing`` assigned the model a primary
    version (and optionally a canary taking a share of those requests). ``clock`` is the server's one monotonic
    nanosecond clock, given to every batcher and warm-up.
    """

    def __init__(
        self,
        repository: Path,
        *,
        stats_factory: StatsFactory,
        clock: Clock,
        observers: ObserverFactory | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._repository = ModelRepository(repository)
        self._clock = clock
        self._stats_factory = stats_factory
        self._observers = observers
        self._draw = draw
        self._served: dict[str, dict[str, ServedVersion]] = {}
        # What a request without a version gets: the routed primary when it is ready, else the newest ready version.
        self._default: dict[str, ServedVersion] = {}
        # Only models with a ready canary are here, so a request to any other model costs one lookup of an empty dict.
        self._canary: dict[str, tuple[ServedVersion, float]] = {}
        self._routes: dict[str, _Route] = {}
        self._snapshot: tuple[ServedVersion, ...] = ()
        self._background: set[asyncio.Task[None]] = set()
        self._status: dict[tuple[str, str], _Status] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._draining: set[asyncio.Task[None]] = set()

    # -- queries (called on every request: plain dictionary lookups) ------------------------------------------------

    def get(self, name: str, version: str = "") -> ServedVersion:
        """The version that serves ``name``/``version``.

        An empty ``version`` means the routed primary (or, with the canary's probability, the canary) when
        ``set_routing`` assigned one and it is ready, otherwise the newest ready version.

        Raises:
            ConduitError: NOT_FOUND for an unknown model or version, UNAVAILABLE for one that is not ready.
        """
        versions = self._served.get(name)
        if versions:
            if not version:
                if self._canary:
                    canary = self._canary.get(name)
                    if canary is not None and self._draw() < canary[1]:
                        return canary[0]
                return self._default[name]
            served = versions.get(version)
            if served is not None:
                return served
        status = self._status.get((name, version)) if version else self._model_status(name)
        if status is not None:
            what = f"model {name!r}" + (f" version {version}" if version else "")
            reason = f": {status.reason}" if status.reason else ""
            raise ConduitError(ErrorCode.UNAVAILABLE, f"{what} is not ready ({status.state.value}){reason}")
        if versions:
            raise ConduitError(ErrorCode.NOT_FOUND, f"model {name!r} has no version {version!r}")
        raise ConduitError(ErrorCode.NOT_FOUND, f"unknown model {name!r}")

    def versions(self, name: str) -> list[str]:
        """Ready versions of ``name``, oldest first."""
        return sorted(self._served.get(name, {}), key=int)

    def served(self) -> tuple[ServedVersion, ...]:
        """Every version taking traffic. A snapshot, safe to read from metric-reader threads."""
        return self._snapshot

    def index(self) -> list[IndexEntry]:
        """Every model version known, ready or not, with the reason of its last failure."""
        entries = [
            IndexEntry(name, version, status.state.value, status.reason)
            for (name, version), status in self._status.items()
        ]
        known = {entry.name for entry in entries}
        # Models on disk that are not loaded (unloaded, or not yet polled) are listed as Triton lists them.
        for name in self._repository.names() - known:
            entries.append(IndexEntry(name, "", VersionState.UNAVAILABLE.value, "unloaded"))
        return sorted(entries, key=lambda e: (e.name, int(e.version) if e.version.isdigit() else -1))

    def routing(self, name: str) -> tuple[str, str, float] | None:
        """``(primary, canary, canary_percent)`` set for ``name``, or ``None`` when it routes to the newest version."""
        route = self._routes.get(name)
        return None if route is None else (route.primary, route.canary, route.canary_fraction * 100.0)

    def set_routing(self, name: str, primary: str, canary: str = "", canary_percent: float = 0.0) -> None:
        """Route requests to ``name`` without a version to ``primary``, and ``canary_percent`` % of them to ``canary``.

        Takes effect at once for versions that are ready; a routed version that is not ready (yet) falls back to the
        newest ready one. Requests naming a version explicitly are not affected.

        Raises:
            ConduitError: INVALID_ARGUMENT for a percent outside 0..100 or a canary equal to the primary.
        """
        if not 0.0 <= canary_percent <= 100.0:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"canary percent {canary_percent} is not within 0..100")
        if canary and canary == primary:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"model {name!r}: canary {canary} is the primary")
        self._routes[name] = _Route(primary, canary, canary_percent / 100.0 if canary else 0.0)
        self._publish(name, self._served.get(name, {}))

    def clear_routing(self, name: str) -> None:
        """Route requests to ``name`` without a version to its newest ready version again."""
        if self._routes.pop(name, None) is not None:
            self._publish(name, self._served.get(name, {}))

    def _model_status(self, name: str) -> _Status | None:
        statuses = [s for (n, _), s in self._status.items() if n == name]
        return statuses[0] if statuses else None

    # -- lifecycle ---

    async def load_all(self) -> None:
        """Load every model found in the repository; failures are logged and shown in the index."""
        await self.sync(force=True)

    async def sync(self, *, force: bool = False) -> None:
        """Bring the served set in line with the repository directory (the poller calls this)."""
        on_disk = self._repository.names()
        for name in sorted(on_disk):
            try:
                await self.load(name, force=force)
            except ConduitError as exc:
                log.warning("model %s: %s", name, exc.message)
            except Exception:  # one unreadable model directory must not keep the others from loading
                log.exception("model %s: unexpected error while loading", name)
        known = set(self._served) | {name for name, _ in self._status}
        for name in sorted(known - on_disk):
            await self.unload(name)

    async def load(self, name: str, *, force: bool = True) -> None:
        """Load new and changed versions of ``name``, unload versions removed from disk.

        Args:
            name: model directory name in the repository.
            force: retry versions whose files did not change since a failed load (explicit loads do; polls do not).

        Raises:
            ConduitError: NOT_FOUND when the repository has no such model; FAILED_PRECONDITION when no version of it
                could be loaded and none is serving.
        """
        repository = self._repository
        if not repository.has(name):
            if name in self._served or any(key[0] == name for key in self._status):
                await self.unload(name)  # gone from disk: what was loaded from it goes too
            raise ConduitError(ErrorCode.NOT_FOUND, f"no model {name!r} in the repository")

        # Scanned once the lock is held: a load queued behind another sees the directory as it is then.
        def scan() -> tuple[dict[str, Path], Path | None]:
            return repository.versions(name), repository.config_file(name)

        await self._load_shielded(name, scan, force)

    async def load_files(
        self, name: str, versions: Mapping[str, Path], config_file: Path | None = None, *, force: bool = True
    ) -> None:
        """Serve exactly ``versions`` of ``name``, from model files wherever they are: new and changed ones are loaded,
        served ones not given are drained. A version's data profile is looked for beside its model file.

        Args:
            name: the model's name.
            versions: the model file (``model.onnx``) of each version, by version (an integer's canonical spelling).
            config_file: the model's ``config.json``; ``None`` or a missing file means all defaults.
            force: retry versions whose files did not change since a failed load.

        Raises:
            ConduitError: FAILED_PRECONDITION as ``load``.
        """
        files = dict(versions)
        await self._load_shielded(name, lambda: (files, config_file), force)

    async def _load_shielded(
        self, name: str, scan: Callable[[], tuple[dict[str, Path], Path | None]], force: bool
    ) -> None:
        # The load runs as its own task: a caller that gives up (deadline, cancelled RPC) must not leave a version
        # half-loaded and stuck in LOADING.
        task = asyncio.get_running_loop().create_task(self._load_serialized(name, scan, force))
        self._background.add(task)
        task.add_done_callback(self._forget)
        await asyncio.shield(task)

    async def _load_serialized(
        self, name: str, scan: Callable[[], tuple[dict[str, Path], Path | None]], force: bool
    ) -> None:
        async with self._locks.setdefault(name, asyncio.Lock()):
            on_disk, config_file = scan()
            await self._load_locked(name, on_disk, config_file, force)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            # Mark the outcome retrieved: a caller that went away has nobody to tell, and the index shows the reason.
            task.exception()

    async def _load_locked(self, name: str, on_disk: dict[str, Path], config_file: Path | None, force: bool) -> None:
        try:
            config = read_model_config(config_file) if config_file is not None else ModelConfig()
        except ConduitError as exc:
            serving = self._served.get(name, {})
            for version in on_disk or [""]:
                self._mark_failed(name, version, exc.message, None, serving=version in serving)
            raise
        current = dict(self._served.get(name, {}))
        failures: list[str] = []
        for version, path in sorted(on_disk.items(), key=lambda item: int(item[0])):
            try:
                fingerprint = _fingerprint(path, config_file)
            except OSError as exc:  # removed between listing and reading
                failures.append(f"version {version}: {exc}")
                continue
            served = current.get(version)
            if served is not None and served.fingerprint == fingerprint:
                # The files are the ones serving: whatever failed since has been put back, nothing to explain.
                self._status[(name, version)] = _Status(VersionState.READY)
                continue
            status = self._status.get((name, version))
            if not force and status is not None and status.failed_fingerprint == fingerprint:
                failures.append(f"version {version}: {status.reason}")
                continue
            if served is None:
                self._status[(name, version)] = _Status(VersionState.LOADING)
            try:
                model, warm_up_ns, profile = await asyncio.to_thread(_load, name, version, path, config, self._clock)
            except ConduitError as exc:
                failures.append(f"version {version}: {exc.message}")
                self._mark_failed(name, version, exc.message, fingerprint, serving=served is not None)
                continue
            stats = served.stats if served is not None else self._stats_factory(name, version)
            spec = model.spec
            # The version's configuration is its spec's, resolved against the graph: the batcher reads it there.
            settings = spec.config
            current[version] = ServedVersion(
                spec=spec,
                batcher=DynamicBatcher(
                    model,
                    max_batch_size=spec.max_batch_size,
                    max_queue_size=settings.max_queue_size,
                    max_queue_delay_us=settings.max_queue_delay_us,
                    preferred_batch_sizes=settings.preferred_batch_sizes,
                    stats=stats,
                    observers=self._observers(spec, profile) if self._observers is not None else (),
                    inline_compute_us=settings.inline_compute_us,
                    warm_up_ns=warm_up_ns,
                    clock=self._clock,
                ),
                fingerprint=fingerprint,
                known_categories=known_categories(spec, profile),
            )
            # Publish before draining the old one: from here on new requests go to the new session.
            self._publish(name, current)
            self._status[(name, version)] = _Status(VersionState.READY)
            if served is not None:
                self._drain(served)
            log.info("model %s version %s ready", name, version)
        for version in set(current) - set(on_disk):
            self._drain(current.pop(version))
            self._status.pop((name, version), None)
            self._publish(name, current)
        for key in [k for k in self._status if k[0] == name and k[1] not in on_disk]:
            del self._status[key]
        if failures and not current:
            raise ConduitError(ErrorCode.FAILED_PRECONDITION, f"model {name!r} failed to load: {'; '.join(failures)}")
        if failures and force:
            # An explicit load that did not take must say so, even though earlier files keep serving.
            raise ConduitError(
                ErrorCode.FAILED_PRECONDITION,
                f"model {name!r}: {'; '.join(failures)}; versions {sorted(current, key=int)} keep serving",
            )
        if not on_disk:
            self._mark_failed(name, "", f"no version directory with {MODEL_FILE}", None)
            raise ConduitError(ErrorCode.FAILED_PRECONDITION, f"model {name!r} has no version with a {MODEL_FILE}")

    def _publish(self, name: str, versions: dict[str, ServedVersion]) -> None:
        """Make ``versions`` the served set of ``name`` (none: not served) and resolve where unversioned requests go."""
        route = self._routes.get(name)
        if versions:
            self._served[name] = dict(versions)
            primary = versions.get(route.primary) if route is not None else None
            self._default[name] = primary if primary is not None else versions[max(versions, key=int)]
            canary = versions.get(route.canary) if route is not None and route.canary_fraction > 0 else None
            if canary is not None and route is not None:
                self._canary[name] = (canary, route.canary_fraction)
            else:
                self._canary.pop(name, None)
        else:
            self._served.pop(name, None)
            self._default.pop(name, None)
            self._canary.pop(name, None)
        # Rebuilt, never mutated: metric readers on other threads iterate it while the loop publishes.
        self._snapshot = tuple(v for served in self._served.values() for v in served.values())

    def _mark_failed(
        self, name: str, version: str, reason: str, fingerprint: Fingerprint | None, *, serving: bool = False
    ) -> None:
        # A failed reload of a serving version keeps it READY; the reason says why the new files were refused.
        state = VersionState.READY if serving else VersionState.UNAVAILABLE
        prefix = "serving the previous files; the new ones failed to load: " if serving else ""
        self._status[(name, version)] = _Status(state, prefix + reason, fingerprint)
        log.warning("model %s version %s: %s", name, version or "-", reason)

    async def unload(self, name: str) -> None:
        """Stop serving every version of ``name`` once in-flight requests are answered.

        Raises:
            ConduitError: NOT_FOUND when ``name`` is neither served nor known.
        """
        if name not in self._served and not any(key[0] == name for key in self._status):
            raise ConduitError(ErrorCode.NOT_FOUND, f"unknown model {name!r}")
        async with self._locks.setdefault(name, asyncio.Lock()):
            versions = self._served.get(name, {})
            self._routes.pop(name, None)
            self._publish(name, {})
            for key in [key for key in self._status if key[0] == name]:
                del self._status[key]
            for served in versions.values():
                self._drain(served)

    def _drain(self, served: ServedVersion) -> None:
        task = asyncio.get_running_loop().create_task(served.batcher.stop())
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def close(self) -> None:
        """Drain every version: each queued request is answered before this returns."""
        for task in list(self._background):
            task.cancel()
        for name in list(self._served):
            versions = self._served[name]
            self._publish(name, {})
            for served in versions.values():
                self._drain(served)
        while self._draining:
            await asyncio.gather(*list(self._draining))
