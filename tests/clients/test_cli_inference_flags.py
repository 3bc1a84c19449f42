"""The TLS and token flags of the commands that call an inference server (``conduit bench``, ``conduit demo``): a
half pair, a file that cannot be read or is not PEM, an empty token, each refused in one line naming its flag, with
exit code 1, before anything is started or called."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.cli import main
from tests.pki import Authority

BENCH = ["bench", "--target", "127.0.0.1:1", "--model", "classifier", "--quiet"]


@pytest.fixture
def pem(tmp_path: Path) -> dict[str, Path]:
    """A CA, a client certificate and key, a file that is not PEM, a missing file and a directory."""
    ca = Authority.create(tmp_path / "ca")
    client = ca.issue(tmp_path / "client", "caller", client=True)
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("certificate goes here\n")
    return {
        "ca": ca.cert,
        "cert": client.cert,
        "key": client.key,
        "not-pem": not_pem,
        "missing": tmp_path / "missing.pem",
        "dir": tmp_path,
    }


def refusal(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line ``conduit`` printed refusing ``argv``, which must exit 1 and print nothing on stdout."""
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tls-cert", "{cert}"], "conduit bench: --tls-cert needs --tls-key"),
        (["--tls-ca", "{ca}", "--tls-key", "{key}"], "conduit bench: --tls-key needs --tls-cert"),
        (["--tls-ca", "{missing}"], "conduit bench: --tls-ca {missing}: No such file or directory"),
        (["--tls-ca", "{dir}"], "conduit bench: --tls-ca {dir}: Is a directory"),
        (["--tls-ca", "{not-pem}"], "conduit bench: --tls-ca {not-pem}: not a PEM file"),
        (["--tls-cert", "{cert}", "--tls-key", "{missing}"], "conduit bench: --tls-key {missing}: No such file"),
        (["--tls-cert", "{not-pem}", "--tls-key", "{key}"], "conduit bench: --tls-cert {not-pem}: not a PEM file"),
    ],
)
def test_bench_refuses_bad_tls_and_token_flags_in_one_line(
    pem: dict[str, Path], capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    paths = {name: str(path) for name, path in pem.items()}
    line = refusal([*BENCH, *(flag.format_map(paths) for flag in flags)], capsys)
    assert line.startswith(message.format_map(paths)), line


def test_an_empty_token_flag_falls_back_to_a_blank_variable_which_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONDUIT_TOKEN", "  ")
    line = refusal([*BENCH, "--token", ""], capsys)
    assert line == "conduit bench: the token is empty (--token, or CONDUIT_TOKEN when --token is empty or not given)"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tls-cert", "{cert}"], "conduit demo: --tls-cert needs --tls-key"),
        (["--tls-key", "{key}"], "conduit demo: --tls-key needs --tls-cert"),
        (["--tls-cert", "{missing}", "--tls-key", "{key}"], "conduit demo: --tls-cert {missing}: No such file"),
        (["--tls-cert", "{cert}", "--tls-key", "{not-pem}"], "conduit demo: --tls-key {not-pem}: not a PEM file"),
    ],
)
def test_demo_refuses_bad_tls_flags_in_one_line(
    pem: dict[str, Path], capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    paths = {name: str(path) for name, path in pem.items()}
    line = refusal(["demo", *(flag.format_map(paths) for flag in flags)], capsys)
    assert line.startswith(message.format_map(paths)), line
