"""Data sets and training runs against the control plane: the trainers library on one side, the registry on the other.

``import_frame`` versions, profiles and uploads a polars frame (``import_outcome`` also tells whether an outdated
profile of unchanged rows was rebuilt); ``fetch_dataset`` brings a version back;
``register_result`` stores a training run as a model version with its metrics, lineage and attachments
(``evaluation.json``, ``spec.toml``, ``training.log``, ``environment.json``, ``profile.json``). The
``conduit datasets``/``conduit train`` commands and ``conduit demo`` are thin layers over these.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl

from contract.client import SyncControlPlaneClient
from contract.entities import TRAINING_PROFILE, DatasetVersion, ModelVersion
from contract.errors import ConduitError, ErrorCode
from trainers import TrainingResult, bundled
from trainers import datasets as ds

__all__ = [
    "BUNDLED_PREFIX",
    "DatasetImport",
    "fetch_dataset",
    "import_frame",
    "import_outcome",
    "read_source",
    "register_result",
    "reprofile",
]

BUNDLED_PREFIX = "bundled:"
"""``bundled:NAME`` names a data set shipped with Conduit (``trainers.bundled``) as an import source."""


def read_source(
    source: str | None,
    *,
    sql: str | None = None,
    db: str | None = None,
    null_values: Sequence[str] = ds.DEFAULT_NULL_VALUES,
) -> tuple[pl.DataFrame, str]:
    """Read a file, a bundled data set or a SQL query; returns the frame and how its source is recorded.

    Text values equal to one of ``null_values`` are missing in files and query results (bundled data has none).
    """
    if sql is not None:
        if not db:
            raise ds.DatasetError("--sql needs --db URL (an SQLAlchemy URL)")
        return ds.read_sql(sql, db, null_values=null_values), f"sql:{ds.redact_url(db)}"
    if not source:
        raise ds.DatasetError("give a file, bundled:NAME, or --sql QUERY --db URL")
    if source.startswith(BUNDLED_PREFIX):
        name = source.removeprefix(BUNDLED_PREFIX)
        if name not in bundled.BUNDLED:
            raise ds.DatasetError(f"no bundled data set {name!r}; there are: {', '.join(sorted(bundled.BUNDLED))}")
        return bundled.load(name), source
    path = Path(source)
    return ds.read_file(path, null_values=null_values), f"file:{path.name}"


@dataclass(frozen=True, slots=True)
class DatasetImport:
    """What an import did: ``imported`` a new version, found it ``unchanged``, or found it unchanged with an
    outdated profile and rebuilt that (``profile rebuilt``)."""

    dataset: DatasetVersion
    outcome: Literal["imported", "unchanged", "profile rebuilt"]


def import_frame(
    client: SyncControlPlaneClient,
    frame: pl.DataFrame,
    name: str,
    *,
    source: str,
    target: str = "",
    description: str = "",
) -> tuple[DatasetVersion, bool]:
    """Version, profile and upload ``frame`` as data set ``name``; identical data gives the same version.

    Returns the stored version and whether this call created it.

    Raises:
        DatasetError: empty data, or a ``target`` that is not a column.
    """
    done = import_outcome(client, frame, name, source=source, target=target, description=description)
    return done.dataset, done.outcome == "imported"


def import_outcome(
    client: SyncControlPlaneClient,
    frame: pl.DataFrame,
    name: str,
    *,
    source: str,
    target: str = "",
    description: str = "",
) -> DatasetImport:
    """``import_frame``, telling also whether the stored version's outdated profile was replaced by this one's.

    Raises:
        DatasetError: empty data, or a ``target`` that is not a column.
    """
    if frame.height == 0:
        raise ds.DatasetError(f"{source}: no rows to import")
    if target and target not in frame.columns:
        raise ds.DatasetError(f"target column {target!r} is not in the data (columns: {', '.join(frame.columns)})")
    # The stored file holds the rows in the form their version hashes (ISO date text as dates, wide dtypes).
    frame = ds.canonical(frame)
    version = ds.content_version(frame)
    before = _stored(client, name, version)
    with tempfile.TemporaryDirectory(prefix="conduit-dataset-") as folder:
        path = Path(folder) / "data.parquet"
        ds.write_parquet(frame, path)
        stored, created = client.run(
            client.api.import_dataset(
                name,
                path,
                version=version,
                profile=ds.profile(frame),
                source=source,
                target=target,
                description=description,
            )
        )
    if created:
        return DatasetImport(stored, "imported")
    # The control plane replaces an outdated profile of the rows it already has by the one just sent.
    rebuilt = before is not None and before.profile.outdated and not stored.profile.outdated
    return DatasetImport(stored, "profile rebuilt" if rebuilt else "unchanged")


def _stored(client: SyncControlPlaneClient, name: str, version: str) -> DatasetVersion | None:
    try:
        return client.run(client.api.get_dataset(name, version))
    except ConduitError as exc:
        if exc.code is ErrorCode.NOT_FOUND:
            return None
        raise


def reprofile(client: SyncControlPlaneClient, name: str, version: str = "") -> DatasetImport:
    """Rebuild an outdated profile of a stored data set version (the newest when ``version`` is empty) from its
    rows: downloaded, profiled here and sent back as an import of the same rows. A current profile is left as it is
    (``unchanged``) and no row is downloaded.

    Raises:
        ConduitError: NOT_FOUND for an unknown version; FAILED_PRECONDITION when the stored rows no longer hash to
            their version (they would be imported as another one).
    """
    stored = client.run(client.api.get_dataset(name, version))
    if not stored.profile.outdated:
        return DatasetImport(stored, "unchanged")
    frame, stored = fetch_dataset(client, name, stored.version)
    again = ds.content_version(ds.canonical(frame))
    if again != stored.version:
        raise ConduitError(
            ErrorCode.FAILED_PRECONDITION,
            f"the rows of {name}:{stored.version} hash to version {again} here; import them again instead",
        )
    return import_outcome(
        client, frame, name, source=stored.source, target=stored.target, description=stored.description
    )


def fetch_dataset(client: SyncControlPlaneClient, name: str, version: str = "") -> tuple[pl.DataFrame, DatasetVersion]:
    """A data set version (the newest when ``version`` is empty) as a frame, with its record."""
    with tempfile.TemporaryDirectory(prefix="conduit-dataset-") as folder:
        path = Path(folder) / "data.parquet"
        stored = client.run(client.api.download_dataset(name, path, version))
        return ds.read_parquet(path), stored


def register_result(
    client: SyncControlPlaneClient,
    result: TrainingResult,
    *,
    model: str,
    aliases: Sequence[str] = (),
    description: str = "",
    log: str = "",
) -> ModelVersion:
    """Register a training run as the next version of ``model``, with everything a report needs attached."""
    lineage = result.lineage
    source = result.source
    environment = {
        "packages": result.packages,
        # The lineage's code version is the spec's project; Conduit's own commit is kept apart, beside its package.
        "code": {
            "commit": source.commit if source is not None else "",
            "dirty": source.dirty if source is not None else False,
            "conduit_commit": result.conduit_commit,
        },
        "classes": list(result.classes),
        "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in result.inputs],
        "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in result.outputs],
    }
    attachments = {
        "evaluation.json": ("application/json", json.dumps(result.evaluation, allow_nan=False).encode()),
        "spec.toml": ("application/toml", lineage.training_spec.encode()),
        "environment.json": ("application/json", json.dumps(environment, indent=2).encode()),
        # The baseline of monitoring: the spec's target and derived columns, which the data set's profile lacks.
        TRAINING_PROFILE: ("application/json", json.dumps(result.profile.to_json(), allow_nan=False).encode()),
    }
    if log:
        attachments["training.log"] = ("text/plain", log.encode())
    spec = result.spec
    with tempfile.TemporaryDirectory(prefix="conduit-model-") as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(result.onnx)
        return client.run(
            client.api.register_version(
                model,
                path,
                metrics=result.metrics,
                params=result.params,
                tags={"task": spec.model.task, "estimator": spec.model.estimator, "dataset": lineage.dataset},
                lineage=lineage,
                description=description,
                aliases=list(aliases),
                attachments=attachments,
            )
        )
