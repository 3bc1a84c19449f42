"""Documents attached to a version at registration (evaluation data, spec, log), through the gRPC API."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import grpc
import pytest

from control_plane.protocol import control_plane_pb2 as cp

from .conftest import Api, StartApi, files, upload_requests

EVALUATION = json.dumps({"roc": {"fpr": [0.0, 0.1, 1.0], "tpr": [0.0, 0.8, 1.0]}, "confusion": [[90, 10], [5, 95]]})
DOCUMENTS = [
    cp.AttachmentUpload(name="evaluation.json", media_type="application/json", content=EVALUATION.encode()),
    cp.AttachmentUpload(name="spec.toml", media_type="application/toml", content=b'[model]\nestimator = "forest"\n'),
    cp.AttachmentUpload(name="training.log", media_type="text/plain; charset=utf-8", content=b"epoch 1\n" * 1000),
]


def _attachment_rows(sqlite_url: str) -> int:
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as connection:
        (count,) = connection.execute("SELECT count(*) FROM version_attachments").fetchone()
    return int(count)


async def test_attachments_round_trip(any_api: Api, model_bytes: bytes) -> None:
    stub, admin = any_api.stub, any_api.admin
    registered = await any_api.register("fraud", model_bytes, attachments=DOCUMENTS, aliases=["staging"])
    assert [(a.name, a.media_type, a.size_bytes) for a in registered.attachments] == [
        (d.name, d.media_type, len(d.content)) for d in DOCUMENTS
    ]
    assert [a.sha256 for a in registered.attachments] == [hashlib.sha256(d.content).hexdigest() for d in DOCUMENTS]
    got = await stub.GetVersion(cp.GetVersionRequest(ref=cp.VersionRef(model="fraud", version=1)), metadata=admin)
    assert got.attachments == registered.attachments

    for ref in (cp.VersionRef(model="fraud", version=1), cp.VersionRef(model="fraud", alias="staging")):
        for document, listed in zip(DOCUMENTS, registered.attachments, strict=True):
            request = cp.GetAttachmentRequest(ref=ref, name=document.name)
            content = await stub.GetAttachment(request, metadata=admin)
            assert (content.attachment, content.content, content.version) == (listed, document.content, 1)
    # Content-addressed, like the model itself: the artifact directory holds the model and the three documents.
    assert {p.name for p in files(any_api.artifacts)} == {
        registered.sha256,
        *(a.sha256 for a in registered.attachments),
    }

    plain = await any_api.register("fraud", model_bytes)
    assert list(plain.attachments) == []
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        request = cp.GetAttachmentRequest(ref=cp.VersionRef(model="fraud"), name="evaluation.json")
        await stub.GetAttachment(request, metadata=admin)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    viewer = await any_api.user("dashboard", cp.ROLE_VIEWER)
    request = cp.GetAttachmentRequest(ref=cp.VersionRef(model="fraud", version=1), name="evaluation.json")
    assert json.loads((await stub.GetAttachment(request, metadata=viewer)).content) == json.loads(EVALUATION)
    audit = await stub.ListAudit(
        cp.ListAuditRequest(action="RegisterVersion", target_prefix="model/fraud:1"), metadata=admin
    )
    assert [a["name"] for a in json.loads(audit.entries[0].after_json)["attachments"]] == [d.name for d in DOCUMENTS]


async def _refused(api: Api, model_bytes: bytes, attachments: list[cp.AttachmentUpload]) -> grpc.StatusCode:
    before = await api.snapshot()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        requests = upload_requests("fraud", model_bytes, create_model=True, attachments=attachments)
        await api.stub.RegisterVersion(iter(requests), metadata=api.admin, timeout=30)
    assert await api.snapshot() == before
    assert files(api.spool) == []
    return refused.value.code()


async def test_attachments_over_the_limit_store_nothing(
    start_api: StartApi, sqlite_url: str, model_bytes: bytes
) -> None:
    limit = sum(len(d.content) for d in DOCUMENTS) - 1
    api = await start_api(sqlite_url, max_attachment_bytes=limit)
    assert await _refused(api, model_bytes, DOCUMENTS) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await api.snapshot() == ([], [])  # no model, no version, no artifact
    assert _attachment_rows(sqlite_url) == 0
    registered = await api.register("fraud", model_bytes, attachments=DOCUMENTS[:2])
    assert len(registered.attachments) == 2 and _attachment_rows(sqlite_url) == 2


@pytest.mark.parametrize(
    "attachments",
    [
        [cp.AttachmentUpload(name="../evaluation.json", media_type="application/json", content=b"{}")],
        [cp.AttachmentUpload(name="eval uation.json", media_type="application/json", content=b"{}")],
        [cp.AttachmentUpload(name="", media_type="application/json", content=b"{}")],
        [cp.AttachmentUpload(name="e" * 129, media_type="application/json", content=b"{}")],
        [cp.AttachmentUpload(name="evaluation.json", media_type="", content=b"{}")],
        [DOCUMENTS[0], DOCUMENTS[0]],
    ],
    ids=["path", "space", "empty", "long", "no-media-type", "twice"],
)
async def test_bad_attachments_are_invalid_and_store_nothing(
    api: Api, sqlite_url: str, model_bytes: bytes, attachments: list[cp.AttachmentUpload]
) -> None:
    assert await _refused(api, model_bytes, attachments) == grpc.StatusCode.INVALID_ARGUMENT
    assert _attachment_rows(sqlite_url) == 0
