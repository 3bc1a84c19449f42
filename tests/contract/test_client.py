"""``contract.client.ControlPlaneClient`` against a real control plane on loopback: data sets and version
attachments."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import polars as pl
import pytest

from contract.client import ControlPlaneClient, collect
from contract.entities import ColumnProfile, DatasetProfile, VersionRef
from contract.errors import ConduitError, ErrorCode
from control_plane.app import ControlPlaneServer
from control_plane.settings import ControlPlaneSettings
from tests.conftest import TrainedModel

ADMIN_TOKEN = "cdt_client-test-admin-token-0123456789abcdefghij"
PROFILE = DatasetProfile(
    rows=3,
    columns=(
        ColumnProfile(
            name="amount",
            dtype="Float64",
            kind="numeric",
            missing=0,
            missing_rate=0.0,
            bin_edges=(1.0, 2.0, 3.0),
            bin_counts=(2, 1),
            min=1.0,
            max=3.0,
            mean=2.0,
            std=1.0,
        ),
    ),
)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[ControlPlaneClient]:
    settings = ControlPlaneSettings(home=tmp_path / "home", grpc_port=0, admin_token=ADMIN_TOKEN)
    server = ControlPlaneServer(settings)
    await server.start()
    async with ControlPlaneClient.connect(server.target, token=ADMIN_TOKEN) as connected:
        yield connected
    await server.stop(grace=1.0)


def _parquet(path: Path, amounts: list[float]) -> str:
    """Write a Parquet file; its content hash, as the trainers would name the version."""
    frame = pl.DataFrame({"amount": amounts})
    frame.write_parquet(path)
    return hashlib.sha256(json.dumps(amounts).encode()).hexdigest()[:24]


async def test_import_list_get_and_download_data_sets(client: ControlPlaneClient, tmp_path: Path) -> None:
    source = tmp_path / "credit.parquet"
    version = _parquet(source, [1.0, 2.0, 3.0])
    dataset, created = await client.import_dataset(
        "credit",
        source,
        version=version,
        profile=PROFILE,
        source="file:credit.csv",
        target="amount",
        description="three rows",
    )
    assert created and (dataset.name, dataset.version, dataset.profile) == ("credit", version, PROFILE)
    assert dataset.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    again, created = await client.import_dataset(
        "credit", source, version=version, profile=PROFILE, source="file:credit.csv"
    )
    assert (again, created) == (dataset, False)

    newer_source = tmp_path / "newer.parquet"
    newer, _ = await client.import_dataset(
        "credit",
        newer_source,
        version=_parquet(newer_source, [4.0]),
        profile=PROFILE,
        source="file:newer.csv",
    )
    assert await collect(lambda token: client.list_datasets(page_token=token)) == [newer]
    assert await collect(lambda token: client.list_dataset_versions("credit", page_token=token)) == [newer, dataset]
    assert await collect(lambda token: client.list_dataset_versions("credit", page_token=token), 1) == [newer]
    assert await client.get_dataset("credit", version) == dataset
    assert await client.get_dataset("credit") == newer

    destination = tmp_path / "out" / "credit.parquet"
    destination.parent.mkdir()
    written = await client.download_dataset("credit", destination, version)
    assert written == dataset and destination.read_bytes() == source.read_bytes()
    assert pl.read_parquet(destination)["amount"].to_list() == [1.0, 2.0, 3.0]
    assert await client.download_dataset("credit", destination) == newer
    assert destination.read_bytes() == newer_source.read_bytes()
    assert [p.name for p in destination.parent.iterdir()] == ["credit.parquet"]  # no partial file left

    with pytest.raises(ConduitError) as missing:
        await client.download_dataset("ghost", tmp_path / "ghost.parquet")
    assert missing.value.code is ErrorCode.NOT_FOUND
    assert not (tmp_path / "ghost.parquet").exists()


async def test_register_with_attachments_and_read_them_back(
    client: ControlPlaneClient, tmp_path: Path, classifier: TrainedModel
) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(classifier.onnx)
    evaluation = json.dumps({"auc": 0.93, "roc": [[0.0, 0.0], [1.0, 1.0]]}).encode()
    version = await client.register_version(
        "fraud",
        model,
        aliases=["staging"],
        attachments={"evaluation.json": ("application/json", evaluation), "training.log": ("text/plain", b"done\n")},
    )
    assert [(a.name, a.size_bytes) for a in version.attachments] == [
        ("evaluation.json", len(evaluation)),
        ("training.log", 5),
    ]
    found = await client.get_attachment(VersionRef.parse("fraud@staging"), "evaluation.json")
    assert (found.content, found.attachment.media_type, found.version) == (evaluation, "application/json", 1)
    with pytest.raises(ConduitError) as missing:
        await client.get_attachment(VersionRef.parse("fraud:1"), "spec.toml")
    assert missing.value.code is ErrorCode.NOT_FOUND
    with pytest.raises(ConduitError) as bad:
        await client.register_version("fraud", model, attachments={"../escape": ("text/plain", b"x")})
    assert bad.value.code is ErrorCode.INVALID_ARGUMENT
