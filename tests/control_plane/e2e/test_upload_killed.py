"""SIGKILL a client in the middle of an upload: no version, no model row, no artifact, no spool file left."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from .conftest import ADMIN_TOKEN, MODEL, Cluster, eventually

UPLOADER = textwrap.dedent(
    """
    import hashlib, sys, threading, grpc
    from control_plane.protocol import control_plane_pb2 as cp, control_plane_pb2_grpc as cp_grpc

    address, token = sys.argv[1], sys.argv[2]
    chunk = b"\\x08\\x07" * 512 * 1024  # 1 MiB
    total = 64
    header = cp.RegisterVersionHeader(
        model=sys.argv[3], create_model=True, sha256=hashlib.sha256(chunk * total).hexdigest(),
        size_bytes=len(chunk) * total,
    )
    never = threading.Event()

    def requests():
        yield cp.RegisterVersionRequest(header=header)
        for i in range(8):
            yield cp.RegisterVersionRequest(chunk=chunk)
        print("sent", flush=True)
        never.wait()  # the rest never comes: this process is killed here

    stub = cp_grpc.ControlPlaneStub(grpc.insecure_channel(address))
    stub.RegisterVersion(requests(), metadata=(("authorization", "Bearer " + token),))
    """
)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_client_killed_mid_upload_leaves_nothing(start_cluster: Callable[[str], Cluster]) -> None:
    cluster = start_cluster("")
    artifacts_before = _files(cluster.home / "artifacts")
    uploader = subprocess.Popen(
        [sys.executable, "-c", UPLOADER, cluster.control_plane.address, ADMIN_TOKEN, MODEL],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert uploader.stdout is not None
    assert uploader.stdout.readline().strip() == "sent"
    # The control plane is receiving: a spool file holds the bytes so far.
    eventually(lambda: len(_files(cluster.home / "tmp")) == 1, what="the upload is being spooled")
    uploader.kill()
    uploader.wait(10)

    eventually(lambda: _files(cluster.home / "tmp") == [], what="the spool file is removed")
    assert _files(cluster.home / "artifacts") == artifacts_before
    assert json.loads(cluster.cli("models", "list", "--all", "--json").stdout) == []
    missing = cluster.cli("models", "versions", MODEL, check=False)
    assert missing.returncode == 1
    assert "NOT_FOUND" in missing.stderr
