"""Imports from URLs end to end: `conduit datasets import URL` and `conduit jobs add --import` against a real
control plane, a real HTTP API on loopback (pages, a bearer token) and moto's S3 server; the token read from the
environment appears in no output, listing, audit entry, log or stored file."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.http_api import Answer, ApiServer, pages, serve_api
from trainers.datasets._pages import flatten

from .conftest import Cluster

TOKEN = "tok_5ecret-bearer-0123456789"
RECORDS = [
    {"id": i, "amount": 10.5 * i, "address": {"city": ["Oslo", "Lima", "Pune"][i % 3], "zip": 1000 + i}}
    for i in range(8)
]
PAGED = ["--records", "data.items", "--next", "links.next", "--header", "Authorization: Bearer env:API_TOKEN"]


@pytest.fixture
def api() -> Iterator[ApiServer]:
    yield from serve_api()


def _serve_pages(api: ApiServer, records: list[dict[str, Any]]) -> None:
    for path, answer in pages(records, size=3, base=api.url).items():
        api.route(path, answer)
        api.require(path, "Authorization", f"Bearer {TOKEN}")


def _rows(cluster: Cluster, ref: str) -> list[dict[str, Any]]:
    path = cluster.tmp / f"{ref.replace(':', '-')}.parquet"
    cluster.cli("datasets", "download", ref, "-o", str(path))
    return pl.read_parquet(path).to_dicts()


@pytest.fixture
def cluster(
    start_cluster: Callable[[str], Cluster], monkeypatch: pytest.MonkeyPatch, s3_bucket: str, s3_endpoint: str
) -> Cluster:
    # The CLI and the control plane both see API_TOKEN; only the control plane's settings let a job read it.
    monkeypatch.setenv("API_TOKEN", TOKEN)
    monkeypatch.setenv("CONDUIT_IMPORT_ALLOW", "127.0.0.1/32")
    monkeypatch.setenv("CONDUIT_IMPORT_ENV", "API_TOKEN")
    monkeypatch.setenv("CONDUIT_CP_S3_ENDPOINT_URL", s3_endpoint)
    return start_cluster("")


def test_a_paginated_api_imports_as_one_data_set_and_again_as_unchanged(cluster: Cluster, api: ApiServer) -> None:
    _serve_pages(api, RECORDS)
    url = f"{api.url}/items?page=1"
    outputs = []
    done = cluster.cli("datasets", "import", url, *PAGED, "--name", "feed", "--target", "amount")
    outputs.append(done.stdout + done.stderr)
    assert done.stdout.startswith("imported feed:"), done.stdout
    assert _rows(cluster, "feed") == [flatten(r) for r in RECORDS]
    assert [path for path, _ in api.requests] == ["/items?page=1", "/items?page=2", "/items?page=3"]

    again = cluster.cli("datasets", "import", url, *PAGED, "--name", "feed", "--target", "amount", "--json")
    outputs.append(again.stdout + again.stderr)
    assert json.loads(again.stdout)["version"] == done.stdout.split()[1].split(":")[1]
    assert cluster.cli("datasets", "import", url, *PAGED, "--name", "feed", "--target", "amount").stdout.startswith(
        "unchanged feed:"
    )
    shown = cluster.cli("datasets", "show", "feed", "--json").stdout
    assert json.loads(shown)["source"] == url
    outputs += [shown, cluster.cli("audit", "--json").stdout]

    # Bad answers are one line each, exit 1, and store nothing.
    api.route("/broken", Answer(200, b"<html>oops</html>", (("Content-Type", "text/html"),)))
    failed = cluster.cli("datasets", "import", f"{api.url}/broken", "--records", "items", "--name", "x", check=False)
    assert failed.returncode == 1 and failed.stderr.count("\n") == 1, failed.stderr
    assert f"page 1 of {api.url}/broken: not JSON" in failed.stderr
    denied = cluster.cli("datasets", "import", url, "--records", "data.items", "--name", "x", check=False)
    assert denied.returncode == 1 and "HTTP 401 Unauthorized" in denied.stderr

    for text in [*outputs, failed.stderr, denied.stderr, (cluster.tmp / "control-plane.log").read_text()]:
        assert TOKEN not in text


def test_a_csv_in_a_bucket_imports_through_the_s3_settings(
    cluster: Cluster, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    s3_client.put_object(Bucket=s3_bucket, Key="exports/loans.csv", Body=b"age,income,default\n31,52000,0\n45,,1\n")
    done = cluster.cli("datasets", "import", f"s3://{s3_bucket}/exports/loans.csv", "--name", "loans", "--json")
    assert json.loads(done.stdout)["source"] == f"s3://{s3_bucket}/exports/loans.csv"
    assert _rows(cluster, "loans") == [
        {"age": 31, "income": 52000, "default": 0},
        {"age": 45, "income": None, "default": 1},
    ]
    missing = cluster.cli("datasets", "import", f"s3://{s3_bucket}/nope.csv", "--name", "loans", check=False)
    assert missing.returncode == 1 and f"s3://{s3_bucket}/nope.csv: no such object" in missing.stderr


def test_a_scheduled_import_makes_a_new_version_only_when_the_api_changes(cluster: Cluster, api: ApiServer) -> None:
    _serve_pages(api, RECORDS)
    url = f"{api.url}/items?page=1"
    added = cluster.cli("jobs", "add", "feed-sync", "--cron", "0 3 * * *", "--import", url, *PAGED, "--name", "feed")
    assert "import" in added.stdout

    def run() -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(cluster.cli("jobs", "run", "feed-sync", "--json").stdout)
        return answer

    first = run()
    assert first["outcome"] == "succeeded", first["log"]
    assert "running as 'admin'" in first["log"] and "imported feed:" in first["log"]
    second = run()
    assert second["outcome"] == "succeeded" and "unchanged feed:" in second["log"], second["log"]
    assert len(json.loads(cluster.cli("datasets", "versions", "feed", "--json").stdout)) == 1

    _serve_pages(api, [*RECORDS, {"id": 99, "amount": 1.0, "address": {"city": "Rome", "zip": 2000}}])
    third = run()
    assert "imported feed:" in third["log"], third["log"]
    versions = json.loads(cluster.cli("datasets", "versions", "feed", "--json").stdout)
    assert len(versions) == 2
    assert _rows(cluster, "feed")[-1]["address.city"] == "Rome"

    # What a viewer or an operator can read holds the reference, never the value.
    texts = [
        cluster.cli("jobs", "list", "--json").stdout,
        cluster.cli("jobs", "history", "feed-sync", "--logs", "--json").stdout,
        cluster.cli("audit", "--json").stdout,
        (cluster.tmp / "control-plane.log").read_text(),
        *(path.read_bytes().decode(errors="replace") for path in cluster.home.rglob("*") if path.is_file()),
    ]
    assert "env:API_TOKEN" in texts[0]
    for text in texts:
        assert TOKEN not in text


def test_import_jobs_refuse_stored_secrets_unlisted_variables_and_refused_hosts(
    cluster: Cluster, api: ApiServer
) -> None:
    url = f"{api.url}/items"
    cases = {
        "Authorization: Bearer abc": "header Authorization would be stored as written",
        "X-Key: env:HOME_SECRET": "env:HOME_SECRET is not among the variables import jobs may read",
    }
    for header, message in cases.items():
        done = cluster.cli(
            "jobs", "add", "j", "--cron", "0 3 * * *", "--import", url, "--header", header, "--name", "d", check=False
        )
        assert done.returncode == 1 and message in done.stderr, done.stderr
    refused = cluster.cli(
        "jobs", "add", "j", "--cron", "0 3 * * *", "--import", "http://169.254.169.254/latest", "--name", "d",
        check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and "CONDUIT_IMPORT_ALLOW" in refused.stderr, refused.stderr
    nameless = cluster.cli("jobs", "add", "j", "--cron", "0 3 * * *", "--import", url, check=False)
    assert nameless.returncode == 1 and "--import needs --name DATASET" in nameless.stderr
