"""Both clients against a `conduit serve` that requires TLS, a client certificate and a token: ``tls_credentials``
and ``token=`` get a caller in; leaving out either is refused with the status that says which."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
import pytest

from clients import AsyncInferenceClient, ConduitError, ErrorCode, InferenceClient, InferResult, tls_credentials
from tests.conftest import TrainedModel
from tests.pki import Authority
from tests.secure_serve import SecureServer

BOUND = 30.0


def expected(model: TrainedModel, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    session = ort.InferenceSession(model.onnx, providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, {"input": rows})
    return labels, probabilities


def assert_matches(result: InferResult, model: TrainedModel, rows: np.ndarray) -> None:
    labels, probabilities = expected(model, rows)
    np.testing.assert_array_equal(result.as_numpy("label"), labels)
    np.testing.assert_array_equal(result.as_numpy("probabilities"), probabilities)


def mutual_tls(server: SecureServer) -> grpc.ChannelCredentials:
    """What ``tls_credentials`` makes of the test CA and the client certificate it issued."""
    files = server.files
    return tls_credentials(files.ca.cert, cert=files.client.cert, key=files.client.key)


def test_the_blocking_client_with_the_ca_a_client_certificate_and_a_token(
    secure_server: SecureServer, classifier: TrainedModel
) -> None:
    token = secure_server.files.viewer_token
    rows = classifier.rows[:8]
    with InferenceClient(secure_server.target, credentials=mutual_tls(secure_server), token=token, timeout=BOUND) as c:
        assert c.model_ready("classifier")
        assert [t.name for t in c.model_metadata("classifier").inputs] == ["input"]
        assert_matches(c.infer("classifier", {"input": rows}), classifier, rows)
        streamed = list(c.stream_infer("classifier", [{"input": rows[i : i + 1]} for i in range(4)]))
    assert all(isinstance(answer, InferResult) for answer in streamed)


async def test_the_asyncio_client_with_the_ca_a_client_certificate_and_a_token(
    secure_server: SecureServer, classifier: TrainedModel
) -> None:
    files = secure_server.files
    credentials = tls_credentials(str(files.ca.cert), cert=str(files.client.cert), key=str(files.client.key))
    rows = classifier.rows[8:16]
    async with AsyncInferenceClient(
        secure_server.target, credentials=credentials, token=files.viewer_token, timeout=BOUND
    ) as client:
        assert await client.model_ready("classifier")
        assert_matches(await client.infer("classifier", {"input": rows}), classifier, rows)
        streamed = [answer async for answer in client.stream_infer("classifier", [{"input": rows[:2]}])]
    assert len(streamed) == 1
    assert isinstance(streamed[0], InferResult)
    assert_matches(streamed[0], classifier, rows[:2])


@pytest.mark.parametrize("token", [None, "cdt_unknown"])
def test_without_a_known_token_inference_is_unauthenticated(
    secure_server: SecureServer, classifier: TrainedModel, token: str | None
) -> None:
    with InferenceClient(secure_server.target, credentials=mutual_tls(secure_server), token=token, timeout=BOUND) as c:
        with pytest.raises(ConduitError) as refused:
            c.infer("classifier", {"input": classifier.rows[:1]})
        assert refused.value.code == ErrorCode.UNAUTHENTICATED
        # Liveness stays open to anyone who gets through TLS: it is what load balancers probe.
        assert c.server_live()


@pytest.mark.parametrize(
    ("holder", "code"), [("viewer", ErrorCode.PERMISSION_DENIED), ("admin", ErrorCode.FAILED_PRECONDITION)]
)
def test_the_token_decides_who_may_load_models(secure_server: SecureServer, holder: str, code: ErrorCode) -> None:
    # A viewer is refused by role; an admin gets through, to the server's refusal of loads without model control.
    files = secure_server.files
    token = files.viewer_token if holder == "viewer" else files.admin_token
    credentials = mutual_tls(secure_server)
    with (
        InferenceClient(secure_server.target, credentials=credentials, token=token, timeout=BOUND) as c,
        pytest.raises(ConduitError) as refused,
    ):
        c.load_model("classifier")
    assert refused.value.code == code


async def test_the_token_travels_in_the_metadata_given_too(
    secure_server: SecureServer, classifier: TrainedModel
) -> None:
    metadata = [("authorization", f"Bearer {secure_server.files.viewer_token}")]
    async with AsyncInferenceClient(
        secure_server.target, credentials=mutual_tls(secure_server), metadata=metadata
    ) as client:
        result = await client.infer("classifier", {"input": classifier.rows[:2]}, timeout=BOUND)
    assert_matches(result, classifier, classifier.rows[:2])


def test_without_a_client_certificate_the_server_refuses_the_connection(secure_server: SecureServer) -> None:
    files = secure_server.files
    credentials = tls_credentials(files.ca.cert)
    with (
        InferenceClient(secure_server.target, credentials=credentials, token=files.viewer_token, timeout=5) as c,
        pytest.raises(ConduitError) as refused,
    ):
        c.server_live()
    assert refused.value.code == ErrorCode.UNAVAILABLE


def test_a_server_certificate_from_another_ca_is_not_trusted(secure_server: SecureServer, tmp_path: Path) -> None:
    other = Authority.create(tmp_path / "other")
    files = secure_server.files
    credentials = tls_credentials(other.cert, cert=files.client.cert, key=files.client.key)
    with (
        InferenceClient(secure_server.target, credentials=credentials, token=files.viewer_token, timeout=5) as c,
        pytest.raises(ConduitError) as refused,
    ):
        c.server_live()
    assert refused.value.code == ErrorCode.UNAVAILABLE


def test_tls_credentials_refuses_half_a_pair_and_files_that_are_not_pem(tmp_path: Path) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    with pytest.raises(ValueError, match="needs its key"):
        tls_credentials(cert=not_pem)
    with pytest.raises(ValueError, match="needs its key"):
        tls_credentials(key=not_pem)
    with pytest.raises(ValueError, match=f"CA certificate {not_pem}: not a PEM file"):
        tls_credentials(not_pem)
    with pytest.raises(FileNotFoundError):
        tls_credentials(tmp_path / "missing.pem")


def test_a_token_is_not_empty_and_not_given_twice() -> None:
    with pytest.raises(ValueError, match="empty"):
        InferenceClient("127.0.0.1:1", token="")
    with pytest.raises(ValueError, match="not both"):
        InferenceClient("127.0.0.1:1", token="t", metadata=[("Authorization", "Bearer u")])
