"""A run's lineage names the commit of the git repository its spec file lives in (``-dirty`` with uncommitted
changes), not Conduit's own; a spec outside any repository, or without git at all, records none."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import polars as pl
import pytest

from tests.trainers.conftest import spec_text
from trainers import load_spec, parse_spec, train
from trainers._lineage import conduit_commit, source_commit

SPEC = spec_text("iris", "decision_tree", "multiclass", {"max_depth": 3})


def _git(folder: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a"}
    env["GIT_COMMITTER_EMAIL"] = "a@b"
    done = subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, text=True, env=env)
    return done.stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git repository with the spec committed in a sub-folder."""
    root = tmp_path / "project"
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "iris.toml").write_text(SPEC)
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "spec")
    return root


def test_the_specs_own_commit_is_the_code_version(project: Path, frames: dict[str, pl.DataFrame]) -> None:
    head = _git(project, "rev-parse", "HEAD")
    result = train(load_spec(project / "specs" / "iris.toml"), frames["iris"], dataset_version="v1")
    assert result.lineage.code_version == head
    assert result.source is not None and not result.source.dirty
    assert result.conduit_commit == conduit_commit() and result.conduit_commit != head


def test_uncommitted_changes_mark_the_commit_dirty(project: Path, frames: dict[str, pl.DataFrame]) -> None:
    head = _git(project, "rev-parse", "HEAD")
    (project / "features.py").write_text("# not committed yet\n")
    result = train(load_spec(project / "specs" / "iris.toml"), frames["iris"], dataset_version="v1")
    assert result.lineage.code_version == f"{head}-dirty"
    assert result.source is not None and result.source.dirty


def test_no_repository_no_commit_and_no_crash(tmp_path: Path, frames: dict[str, pl.DataFrame]) -> None:
    (tmp_path / "iris.toml").write_text(SPEC)
    assert train(load_spec(tmp_path / "iris.toml"), frames["iris"], dataset_version="v1").lineage.code_version == ""
    assert train(parse_spec(SPEC), frames["iris"], dataset_version="v1").lineage.code_version == ""
    empty = tmp_path / "empty"
    empty.mkdir()
    _git(empty, "init", "-q")
    assert source_commit(empty) is None  # a repository without a commit yet
    assert source_commit(tmp_path / "gone") is None


def test_without_git_on_the_path_nothing_is_recorded(
    project: Path, monkeypatch: pytest.MonkeyPatch, frames: dict[str, pl.DataFrame]
) -> None:
    monkeypatch.setenv("PATH", str(project / "no-binaries-here"))
    assert source_commit(project) is None
    assert train(load_spec(project / "specs" / "iris.toml"), frames["iris"], dataset_version="v1").source is None
