"""One HTTP request under the outbound policy, against real servers on loopback: it goes to the address that was
checked (names resolved once, by the policy's resolver), carries the URL's host in ``Host`` and TLS, and never follows
a redirect."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import pytest
from urllib3.exceptions import NewConnectionError, SSLError

from contract.outbound import OutboundPolicy, Refused, redacted_url, request
from tests.conftest import free_port
from tests.pki import Authority

from .conftest import StartReceiver
from .test_outbound_policy import table


def post(policy: OutboundPolicy, url: str, **kwargs: object) -> int:
    with request(policy, "POST", url, body=b"{}", **kwargs) as response:  # type: ignore[arg-type]
        return response.status


def test_a_forbidden_destination_is_refused_before_anything_is_sent(receivers: StartReceiver) -> None:
    receiver = receivers()
    for url in (receiver.url("/hook"), receiver.url("/hook", host="localhost"), receiver.url(host="127.1")):
        with pytest.raises(Refused) as caught:
            post(OutboundPolicy(), url)
        assert "loopback" in caught.value.reason
    assert receiver.requests == []
    assert post(OutboundPolicy("127.0.0.1/32"), receiver.url("/hook")) == 200
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_the_request_goes_to_the_checked_address_with_the_urls_host(receivers: StartReceiver) -> None:
    receiver = receivers()
    calls: list[str] = []
    # No real resolver knows hooks.test: the request can only reach the receiver through the checked address.
    policy = OutboundPolicy("hooks.test", resolver=table({"hooks.test": ["127.0.0.1"]}, calls))
    url = receiver.url("/services/T0/é?token=a b", host="hooks.test")
    assert post(policy, url, headers={"Content-Type": "application/json"}) == 200
    [sent] = receiver.requests
    assert sent.headers["Host"] == f"hooks.test:{receiver.port}"
    assert sent.path == "/services/T0/%C3%A9?token=a%20b"
    assert (sent.method, sent.body, sent.headers["Content-Type"]) == ("POST", b"{}", "application/json")
    assert calls == ["hooks.test"]


def test_credentials_in_the_url_become_basic_authorization(receivers: StartReceiver) -> None:
    receiver = receivers()
    post(OutboundPolicy("127.0.0.1"), receiver.url("/hook").replace("://", "://ops%40corp:pa%3Ass@"))
    [sent] = receiver.requests
    assert base64.b64decode(sent.headers["Authorization"].removeprefix("Basic ")) == b"ops@corp:pa:ss"
    assert "pa" not in sent.path


def test_a_redirect_is_the_answer_and_is_not_followed(receivers: StartReceiver) -> None:
    inside = receivers()
    # Allowed by name only: the redirect's literal address is not, and must not be reached either way.
    outside = receivers()
    outside.answers.put((302, {"Location": inside.url("/latest/meta-data/")}))
    policy = OutboundPolicy("localhost")
    assert post(policy, outside.url("/hook", host="localhost")) == 302
    outside.answers.put((307, {"Location": inside.url("/latest/meta-data/")}))
    assert post(OutboundPolicy("127.0.0.1"), outside.url("/hook")) == 307
    assert len(outside.requests) == 2 and inside.requests == []


def test_the_next_address_is_tried_when_one_refuses_the_connection(receivers: StartReceiver) -> None:
    receiver = receivers()
    # Nothing listens on 127.0.0.2 at the receiver's port (all of 127/8 is loopback on Linux).
    two = table({"pair.test": ["127.0.0.2", "127.0.0.1"]})
    assert post(OutboundPolicy("127.0.0.0/8", resolver=two), receiver.url(host="pair.test")) == 200
    assert len(receiver.requests) == 1
    closed = table({"closed.test": ["127.0.0.1"]})
    with pytest.raises(NewConnectionError):
        post(OutboundPolicy("127.0.0.0/8", resolver=closed), f"http://closed.test:{free_port()}/")


def test_https_sends_the_host_name_as_sni_and_verifies_the_certificate_against_it(
    receivers: StartReceiver, tmp_path: Path
) -> None:
    authority = Authority.create(tmp_path / "ca")
    # The certificate names localhost and 127.0.0.1, not hooks.test.
    receiver = receivers(tls=authority.issue(tmp_path / "server", "localhost"))
    trusted = ssl.create_default_context(cafile=str(authority.cert))
    policy = OutboundPolicy("127.0.0.1", resolver=table({"localhost": ["127.0.0.1"], "hooks.test": ["127.0.0.1"]}))
    assert post(policy, receiver.url("/hook", host="localhost", scheme="https"), tls=trusted) == 200
    assert receiver.server_names == ["localhost"]
    assert receiver.requests[0].headers["Host"] == f"localhost:{receiver.port}"
    # Connected to 127.0.0.1, which the certificate names too: verified against the URL's host, it must fail.
    with pytest.raises(SSLError):
        post(policy, receiver.url("/hook", host="hooks.test", scheme="https"), tls=trusted)
    # The system's authorities do not know the test CA.
    with pytest.raises(SSLError):
        post(policy, receiver.url("/hook", host="localhost", scheme="https"))
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("url", ["ftp://hooks.example/x", "http:///nohost", "http://hooks.example:99999/"])
def test_what_is_not_an_http_url_with_a_host_is_refused(url: str) -> None:
    with pytest.raises(Refused):
        post(OutboundPolicy(resolver=table({"hooks.example": ["8.8.8.8"]})), url)


def test_a_redacted_url_keeps_scheme_host_and_port_only() -> None:
    assert redacted_url("https://user:pw@hooks.example:8443/T0/s3cret?token=q#frag") == "https://hooks.example:8443/…"
    assert redacted_url("http://[::1]:9/x") == "http://[::1]:9/…"
