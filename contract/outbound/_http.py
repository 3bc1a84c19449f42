"""One HTTP request under an ``OutboundPolicy``: resolved once, connected to a checked address, never redirected."""

from __future__ import annotations

import base64
import contextlib
import ssl
from collections.abc import Iterator, Mapping
from urllib.parse import quote, unquote, urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from contract.outbound._policy import OutboundPolicy, Refused

__all__ = ["redacted_url", "request"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters a request target keeps as they are; anything else (non-ASCII, controls) is percent-encoded, so no
# byte of a URL can end the request line or add a header.
_SAFE = "/%:@!$&'()*+,;=-._~?"


def redacted_url(url: str) -> str:
    """``scheme://host[:port]/…``: the URL without credentials, path or query, where secrets usually live."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


@contextlib.contextmanager
def request(
    policy: OutboundPolicy,
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
    tls: ssl.SSLContext | None = None,
) -> Iterator[urllib3.BaseHTTPResponse]:
    """Send one request to ``url`` and yield its response, whose body is left unread (read what you need of it).

    The host is resolved once and every address checked (``OutboundPolicy.resolve``); the request goes to those
    addresses in turn until one accepts the connection, with the URL's host in ``Host`` and, over TLS, in SNI and the
    certificate check. Credentials in the URL (``user:password@``) become a basic ``Authorization`` header. No
    redirect is followed (a 3xx is the answer), nothing is retried, no proxy from the environment is used.

    Args:
        tls: how to verify https servers; the system's trusted authorities by default.

    Raises:
        Refused: the URL is not http(s), or its host is not allowed or does not resolve.
        urllib3.exceptions.HTTPError: the connection failed, timed out, or TLS did not verify.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in _DEFAULT_PORTS or not host:
        raise Refused(host, "the URL is not http:// or https:// with a host")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise Refused(host, f"the port of {host} is not a number from 0 to 65535") from None
    addresses = policy.resolve(host, port)
    name = host.encode("idna").decode("ascii") if not host.isascii() else host
    sent = {k: v for k, v in (headers or {}).items()}
    authority = f"[{name}]" if ":" in name else name
    sent.setdefault("Host", f"{authority}:{parts.port}" if parts.port else authority)
    if parts.username is not None:
        userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        sent.setdefault("Authorization", "Basic " + base64.b64encode(userinfo.encode()).decode("ascii"))
    target = quote(parts.path or "/", safe=_SAFE) + (f"?{quote(parts.query, safe=_SAFE)}" if parts.query else "")
    timeout = urllib3.Timeout(total=timeout_s)
    failure: urllib3.exceptions.HTTPError | None = None
    for address in addresses:
        pool: urllib3.HTTPConnectionPool
        if parts.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                str(address), port, timeout=timeout, maxsize=1, retries=False,
                ssl_context=tls or ssl.create_default_context(), server_hostname=name,
            )  # fmt: skip
        else:
            pool = urllib3.HTTPConnectionPool(str(address), port, timeout=timeout, maxsize=1, retries=False)
        try:
            try:
                response = pool.urlopen(
                    method, target, body=body, headers=sent, retries=False, redirect=False,
                    assert_same_host=False, preload_content=False,
                )  # fmt: skip
            except (NewConnectionError, ConnectTimeoutError) as exc:
                failure = exc  # the next address may answer
                continue
            try:
                yield response
            finally:
                response.release_conn()
            return
        finally:
            pool.close()
    assert failure is not None
    raise failure
