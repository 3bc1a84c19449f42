"""The local cache of a following server: verified artifacts, the model repository made of them, the last assignments.

Layout under the cache directory::

    artifacts/<sha256>                      every artifact downloaded, named by its verified content hash
    repository/<model>/<version>/model.onnx hard links to artifacts: the model repository the ModelManager loads
    repository/<model>/<version>/profile.json the version's training data profile, when its lineage names one
    repository/<model>/config.json          the serving options the assignment sets (none: every default)
    assignments.json                        the assignments last applied (pool, generation, versions, canary split)

Every file appears by an atomic rename of a complete, fsynced temporary file, so a crash never leaves a partial
artifact or state file where a restart would read it.

Apart from ``store``, the methods block on the file system (fsync, copies, tree removal): a caller on a serving event
loop runs them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from contract.entities import ArtifactRef, Callers, PoolAssignments, UnseenCategories
from contract.errors import ConduitError, ErrorCode
from inference_server.profile import PROFILE_FILE
from inference_server.repository import CONFIG_FILE

__all__ = ["ArtifactCache"]

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
STATE_FILE = "assignments.json"
CALLERS_FILE = "callers.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Seconds an artifact is safe from pruning after it was written; see ``ArtifactCache.prune``.
PRUNE_GRACE_S = 600.0


def _check_name(model: str) -> None:
    # Model names become directory names: refuse anything that could leave the repository or hide in it.
    if not model or "/" in model or "\\" in model or model.startswith(".") or "\0" in model:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"model name {model!r} cannot be a repository directory")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _append(file: IO[bytes], digest: hashlib._Hash, chunk: bytes) -> None:
    digest.update(chunk)
    file.write(chunk)


def _finish(file: IO[bytes]) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()


class ArtifactCache:
    """Artifacts by sha256, the repository built from them, and the last applied assignments.

    Args:
        root: The cache directory; created when missing.
        repository: Where the model repository is materialised; default ``root/repository``.
        prune_grace: Seconds after its download during which ``prune`` leaves an artifact alone.
    """

    def __init__(self, root: Path, repository: Path | None = None, *, prune_grace: float = PRUNE_GRACE_S) -> None:
        self.root = root
        self._prune_grace = prune_grace
        self.artifacts = root / "artifacts"
        self.repository = repository if repository is not None else root / "repository"
        self._state_file = root / STATE_FILE
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.repository.mkdir(parents=True, exist_ok=True)

    # -- artifacts ---

    def artifact(self, ref: ArtifactRef) -> Path:
        """Where the artifact of ``ref`` is (or will be) kept.

        Raises:
            ConduitError: INVALID_ARGUMENT when ``ref.sha256`` is not a lowercase hex sha256.
        """
        if not _SHA256.match(ref.sha256):
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{ref.sha256!r} is not a sha256 in hex")
        return self.artifacts / ref.sha256

    def has(self, ref: ArtifactRef) -> bool:
        """Whether the artifact is cached (it was verified before it got its name)."""
        path = self.artifact(ref)
        return path.is_file() and path.stat().st_size == ref.size_bytes

    async def store(self, ref: ArtifactRef, chunks: AsyncIterator[ArtifactRef | bytes]) -> Path:
        """Write a download to the cache once its sha256 and size match ``ref``; returns the artifact's path.

        Raises:
            ConduitError: INTERNAL when the bytes do not match ``ref`` (nothing is kept), or whatever the download
                raised.
        """
        target = self.artifact(ref)
        fd, name = tempfile.mkstemp(prefix=f".{ref.sha256[:16]}-", suffix=".partial", dir=self.artifacts)
        partial = Path(name)
        file = os.fdopen(fd, "wb")
        try:
            digest = hashlib.sha256()
            size = 0
            async for chunk in chunks:
                if isinstance(chunk, ArtifactRef):
                    if (chunk.sha256, chunk.size_bytes) != (ref.sha256, ref.size_bytes):
                        raise ConduitError(
                            ErrorCode.INTERNAL,
                            f"artifact of version {ref.version} announced sha256 {chunk.sha256} size "
                            f"{chunk.size_bytes}, assigned {ref.sha256} size {ref.size_bytes}",
                        )
                    continue
                size += len(chunk)
                if size > ref.size_bytes:
                    raise ConduitError(
                        ErrorCode.INTERNAL, f"artifact {ref.sha256} is larger than its {ref.size_bytes} bytes"
                    )
                # Hashing a chunk costs about as much as writing it: both off the loop, in one hop.
                await asyncio.to_thread(_append, file, digest, chunk)
            if (digest.hexdigest(), size) != (ref.sha256, ref.size_bytes):
                raise ConduitError(
                    ErrorCode.INTERNAL,
                    f"artifact of version {ref.version} has sha256 {digest.hexdigest()} size {size}, "
                    f"expected {ref.sha256} size {ref.size_bytes}: refused",
                )
            await asyncio.to_thread(_finish, file)
            os.replace(partial, target)
            await asyncio.to_thread(_fsync_dir, self.artifacts)
        except BaseException:
            file.close()
            partial.unlink(missing_ok=True)
            raise
        return target

    def prune(self, keep: set[str]) -> None:
        """Delete cached artifacts whose sha256 is not in ``keep`` and that were downloaded over ``prune_grace`` ago.

        Versions in the repository stay loadable: they are hard links (or copies), not the cache's names.
        """
        # Workers of one server share ``artifacts/`` but each knows only its own assignments: a worker still on the
        # previous generation would delete what another just downloaded for the next one, before it is linked. Every
        # worker gets the same assignments within seconds, so an artifact younger than the grace is left to the next
        # prune; an older one another worker still needs is downloaded again by that worker's retry.
        oldest = time.time() - self._prune_grace
        for path in self.artifacts.iterdir():
            # Dot files are downloads in progress, maybe another worker's; a crash leaves at most one per artifact.
            if path.name.startswith(".") or path.name in keep:
                continue
            with contextlib.suppress(FileNotFoundError):  # another worker pruned it first
                if path.stat().st_mtime < oldest:
                    path.unlink()

    # -- the model repository ---

    def install(self, model: str, ref: ArtifactRef) -> None:
        """Make the cached artifact of ``ref`` the ``model.onnx`` of ``model`` version ``ref.version``.

        Raises:
            ConduitError: NOT_FOUND when the artifact is not (or no longer) cached.
        """
        _check_name(model)
        source = self.artifact(ref)
        target = self.repository / model / str(ref.version) / MODEL_FILE
        with contextlib.suppress(FileNotFoundError):
            if os.path.samefile(source, target):
                return
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{MODEL_FILE}.partial")
        partial.unlink(missing_ok=True)
        try:
            os.link(source, partial)
        except FileNotFoundError:  # pruned by another worker since it was found in the cache
            raise ConduitError(ErrorCode.NOT_FOUND, f"artifact {ref.sha256} is no longer cached") from None
        except OSError:  # a file system without hard links: a copy costs disk space, nothing else
            shutil.copyfile(source, partial)
        os.replace(partial, target)

    def has_profile(self, model: str, version: int) -> bool:
        """Whether ``model`` version ``version`` has its ``profile.json`` in the repository."""
        _check_name(model)
        return (self.repository / model / str(version) / PROFILE_FILE).is_file()

    def install_profile(self, model: str, version: int, profile: dict[str, Any]) -> None:
        """Write the training data profile of an installed version (atomically: a load never reads half of it)."""
        _check_name(model)
        directory = self.repository / model / str(version)
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{PROFILE_FILE}-", dir=directory)
        try:
            with os.fdopen(fd, "w") as file:
                json.dump(profile, file)
            os.replace(name, directory / PROFILE_FILE)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise

    def config_file(self, model: str) -> Path:
        """Where the ``config.json`` of ``model`` is; the file may not exist (every default)."""
        _check_name(model)
        return self.repository / model / CONFIG_FILE

    def install_config(self, model: str, unseen_categories: UnseenCategories) -> None:
        """Write the serving options an assignment gives ``model`` as its ``config.json``, the file a repository's
        model is configured by; with only defaults there is none. A changed file makes the next load reload every
        version of the model (its fingerprint changed), so a new option reaches the versions already serving."""
        path = self.config_file(model)
        if unseen_categories == "score":
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{CONFIG_FILE}-", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as file:
                json.dump({"unseen_categories": unseen_categories}, file)
            os.replace(name, path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise

    def models(self) -> set[str]:
        """Models with a directory in the repository."""
        return {p.name for p in self.repository.iterdir() if p.is_dir() and not p.name.startswith(".")}

    def installed(self, model: str) -> set[int]:
        """Versions of ``model`` in the repository."""
        _check_name(model)
        directory = self.repository / model
        if not directory.is_dir():
            return set()
        return {int(p.name) for p in directory.iterdir() if p.name.isascii() and p.name.isdecimal()}

    def model_files(self, model: str) -> dict[str, Path]:
        """The ``model.onnx`` of each version of ``model`` in the repository, by version."""
        files = {str(version): self.repository / model / str(version) / MODEL_FILE for version in self.installed(model)}
        return {version: path for version, path in files.items() if path.is_file()}

    def remove(self, model: str, version: int | None = None) -> None:
        """Take one version of ``model`` (``None``: the whole model) out of the repository."""
        _check_name(model)
        path = self.repository / model if version is None else self.repository / model / str(version)
        shutil.rmtree(path, ignore_errors=True)

    # -- the last applied assignments ---

    def load_state(self) -> PoolAssignments | None:
        """The assignments saved by ``save_state``; ``None`` when there are none or they cannot be read."""
        try:
            return PoolAssignments.from_json(json.loads(self._state_file.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, ConduitError) as exc:  # ConduitError: a value out of range
            log.warning("ignoring unreadable %s: %s", self._state_file, exc)
            return None

    def save_state(self, state: PoolAssignments) -> None:
        """Persist ``state`` atomically."""
        self._write_json(self._state_file, state.to_json())

    def load_callers(self) -> Callers | None:
        """The callers' token hashes saved by ``save_callers``; ``None`` when there are none or they cannot be read."""
        path = self.root / CALLERS_FILE
        try:
            return Callers.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable %s: %s", path, exc)
            return None

    def save_callers(self, callers: Callers) -> None:
        """Persist the callers' token hashes atomically, readable by this user only, so that a restart without the
        control plane still knows who may call."""
        self._write_json(self.root / CALLERS_FILE, callers.to_json())

    def _write_json(self, path: Path, document: dict[str, Any]) -> None:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}-", dir=self.root)  # created 0600
        try:
            with os.fdopen(fd, "w") as file:
                json.dump(document, file, indent=1)
                file.flush()
                os.fsync(file.fileno())
            os.replace(name, path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
