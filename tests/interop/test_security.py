"""Triton's own clients against a secured `conduit serve`, unchanged: tritonclient with ``ssl=True`` and a token in
``headers=``, and perf_analyzer with ``--ssl-grpc-*`` and ``-H``; a plaintext or token-less client is refused with
its precise status."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from contract.tokens import hash_token, new_token
from tests.pki import Authority, Issued

from .test_perf_analyzer import MAX_TRIALS, MEASUREMENT_MS, STABILITY_PERCENT, perf_analyzer  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(120)


@dataclass
class Secured:
    port: int
    ca: Authority
    client: Issued
    token: str

    @property
    def target(self) -> str:
        return f"localhost:{self.port}"

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


@pytest.fixture
def secured(tmp_path: Path, repository: Path, start_serve: Any) -> Secured:
    """`conduit serve` with mutual TLS and a tokens file holding one viewer's token."""
    ca = Authority.create(tmp_path / "ca")
    server, client = ca.issue(tmp_path / "server"), ca.issue(tmp_path / "client", "alice", client=True)
    token = new_token()
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'[[tokens]]\nname = "alice"\nrole = "viewer"\nsha256 = "{hash_token(token)}"\n')
    args = ["--tls-cert", str(server.cert), "--tls-key", str(server.key), "--tls-client-ca", str(ca.cert)]
    credentials = grpc.ssl_channel_credentials(ca.cert_bytes(), client.key_bytes(), client.cert_bytes())
    served = start_serve(repository, *args, "--tokens-file", str(tokens), credentials=credentials)
    return Secured(served.port, ca, client, token)


def _client(secured: Secured, *, ssl: bool = True) -> triton.InferenceServerClient:
    if not ssl:
        return triton.InferenceServerClient(url=secured.target)
    return triton.InferenceServerClient(
        url=secured.target,
        ssl=True,
        root_certificates=str(secured.ca.cert),
        private_key=str(secured.client.key),
        certificate_chain=str(secured.client.cert),
    )


def _input(rows: np.ndarray) -> list[triton.InferInput]:
    tensor = triton.InferInput("input", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows.astype(np.float32))
    return [tensor]


def test_tritonclient_over_tls_with_a_token_infers(secured: Secured, classifier: Any) -> None:
    client = _client(secured)
    try:
        assert client.is_server_live()  # liveness is open: probes carry no token
        result = client.infer("classifier", _input(classifier.rows[:4]), headers=secured.headers())
        assert result.as_numpy("label").tolist() == classifier.estimator.predict(classifier.rows[:4]).tolist()
        with pytest.raises(InferenceServerException) as refused:
            client.infer("classifier", _input(classifier.rows[:1]))
        assert refused.value.status() == "StatusCode.UNAUTHENTICATED"
    finally:
        client.close()


def test_a_plaintext_tritonclient_cannot_reach_a_tls_server(secured: Secured) -> None:
    client = _client(secured, ssl=False)
    try:
        with pytest.raises(InferenceServerException) as failed:
            client.get_server_metadata(headers=secured.headers())
        assert failed.value.status() == "StatusCode.UNAVAILABLE"
    finally:
        client.close()


@pytest.mark.parametrize("streaming", [False, True], ids=["unary", "streaming"])
def test_perf_analyzer_over_mutual_tls_with_a_token(
    perf_analyzer: Path,  # noqa: F811 (fixture)
    secured: Secured,
    classifier: Any,
    tmp_path: Path,
    streaming: bool,
) -> None:
    rows = tmp_path / "rows.json"
    entries = [{"input": {"content": [float(v) for v in row], "shape": [len(row)]}} for row in classifier.rows[:20]]
    rows.write_text(json.dumps({"data": entries}))
    args = [str(perf_analyzer), "-m", "classifier", "-i", "grpc", "-u", secured.target, "--input-data", str(rows)]
    args += ["--measurement-interval", str(MEASUREMENT_MS), "--max-trials", str(MAX_TRIALS)]
    args += ["--stability-percentage", str(STABILITY_PERCENT), "-f", str(tmp_path / "report.csv")]
    args += ["--ssl-grpc-use-ssl", "--ssl-grpc-root-certifications-file", str(secured.ca.cert)]
    args += ["--ssl-grpc-private-key-file", str(secured.client.key)]
    args += ["--ssl-grpc-certificate-chain-file", str(secured.client.cert)]
    if streaming:
        args.append("--streaming")
    run = subprocess.run(
        [*args, "-H", f"authorization: Bearer {secured.token}"], capture_output=True, text=True, timeout=90, check=False
    )
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    assert (tmp_path / "report.csv").is_file()
    refused = subprocess.run(args, capture_output=True, text=True, timeout=90, check=False)
    assert refused.returncode != 0
    assert "UNAUTHENTICATED" in refused.stdout + refused.stderr or "missing token" in refused.stdout + refused.stderr
