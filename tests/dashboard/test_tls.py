"""`conduit dashboard --control-plane-ca`: the dashboard reaches a control plane serving TLS, checking its certificate
against the CA given; without it, it cannot, and says the control plane is unavailable."""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CONDUIT, free_port, self_signed_certificate
from tests.control_plane.e2e.conftest import ADMIN_TOKEN

from .conftest import wait_http


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _login(url: str) -> tuple[int, str]:
    """Fill the dashboard's login form with the admin token; its status and body (a redirect is not followed)."""
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with opener.open(f"{url}/login", timeout=30) as form:
        match = re.search(r'name="csrf" value="([^"]+)"', form.read().decode())
    assert match is not None
    body = urllib.parse.urlencode({"token": ADMIN_TOKEN, "next": "/models", "csrf": match.group(1)}).encode()
    try:
        with opener.open(urllib.request.Request(f"{url}/login", data=body), timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def tls_control_plane(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`conduit control-plane` serving TLS with a self-signed certificate: its address and the certificate."""
    cert, key = self_signed_certificate(tmp_path)
    port = free_port()
    args = [CONDUIT, "control-plane", "--home", str(tmp_path / "home"), "--grpc-port", str(port)]
    args += ["--tls-cert", str(cert), "--tls-key", str(key)]
    log = tmp_path / "control-plane.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "CONDUIT_ADMIN_TOKEN": ADMIN_TOKEN}
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"127.0.0.1:{port}", cert
    finally:
        process.kill()
        process.wait(10)


def _dashboard(tmp_path: Path, control_plane: str, *flags: str) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    log = tmp_path / f"dashboard-{port}.log"
    args = [CONDUIT, "dashboard", "--port", str(port), "--control-plane", control_plane, *flags]
    with log.open("ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", process, log)
    return url, process


def test_the_dashboard_trusts_the_control_plane_ca_it_is_given(
    tls_control_plane: tuple[str, Path], tmp_path: Path
) -> None:
    address, cert = tls_control_plane
    trusting, first = _dashboard(tmp_path, address, "--control-plane-ca", str(cert))
    untrusting, second = _dashboard(tmp_path, address)
    try:
        status, _ = _login(trusting)
        assert status == 303
        status, body = _login(untrusting)
        assert status == 502 and "UNAVAILABLE" in body
    finally:
        for process in (first, second):
            process.kill()
            process.wait(10)
