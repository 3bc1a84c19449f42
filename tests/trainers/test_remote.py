"""Imports from HTTP APIs against a real server on loopback: pages, headers from the environment, retries, limits,
and one clear error for each way an API can fail."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

from contract.entities import ImportSpec
from contract.errors import ConduitError, ErrorCode
from contract.outbound import OutboundPolicy
from tests.http_api import Answer, ApiServer, pages, serve_api
from trainers.datasets import Backoff, DatasetError, content_version, read_remote

LOOPBACK = OutboundPolicy("127.0.0.1/32")
RECORDS = [
    {"id": i, "score": i / 4, "address": {"city": f"city-{i % 3}", "geo": {"lat": i * 1.5}}, "ok": i % 2 == 0}
    for i in range(7)
]


class Waits:
    """A ``Backoff`` that records its waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def backoff(self, **kwargs: Any) -> Backoff:
        return Backoff(sleep=self.waits.append, **kwargs)


@pytest.fixture
def api() -> Iterator[ApiServer]:
    yield from serve_api()


def _read(spec: ImportSpec, *, environ: dict[str, str] | None = None, backoff: Backoff | None = None) -> pl.DataFrame:
    return read_remote(spec, policy=LOOPBACK, environ=environ or {}, backoff=backoff or Backoff(sleep=lambda s: None))


def _paged(api: ApiServer, records: list[dict[str, Any]] = RECORDS, size: int = 3) -> None:
    for path, answer in pages(records, size=size, base=api.url).items():
        api.route(path, answer)


def test_three_pages_become_one_data_set_with_nested_records_flattened(api: ApiServer) -> None:
    _paged(api)
    spec = ImportSpec(f"{api.url}/items?page=1", records="data.items", next="links.next")
    frame = _read(spec)
    assert len(api.requests) == 3
    assert frame.columns == ["id", "score", "address.city", "address.geo.lat", "ok"]
    assert frame["id"].to_list() == [r["id"] for r in RECORDS]
    assert frame["address.city"].to_list() == [r["address"]["city"] for r in RECORDS]
    assert frame.schema["address.geo.lat"] == pl.Float64 and frame.schema["ok"] == pl.Boolean
    # The same records in other pages are the same data set.
    api.route("/all", Answer.json({"data": {"items": RECORDS}}))
    again = _read(ImportSpec(f"{api.url}/all", records="data.items", next="links.next"))
    assert content_version(again) == content_version(frame)


def test_a_link_header_is_followed_and_relative_urls_resolved(api: ApiServer) -> None:
    api.route("/a", Answer.json({"items": RECORDS[:4]}, headers=(("Link", '</b>; rel="next", </a>; rel="first"'),)))
    api.route("/b", Answer.json({"items": RECORDS[4:]}, headers=(("Link", '</a>; rel="prev"'),)))
    frame = _read(ImportSpec(f"{api.url}/a", records="items"))
    assert frame["id"].to_list() == list(range(7))


def test_env_headers_are_sent_from_the_environment(api: ApiServer) -> None:
    api.route("/items", Answer.json({"items": RECORDS}))
    api.require("/items", "Authorization", "Bearer s3cret-token")
    spec = ImportSpec(f"{api.url}/items", records="items", headers=(("Authorization", "Bearer env:API_TOKEN"),))
    assert _read(spec, environ={"API_TOKEN": "s3cret-token"}).height == 7
    assert "s3cret-token" not in spec.to_json() and "env:API_TOKEN" in spec.to_json()
    with pytest.raises(ConduitError, match="environment variable API_TOKEN is not set"):
        _read(spec)
    with pytest.raises(DatasetError, match=r"HTTP 401 Unauthorized \(check the --header credentials\)") as raised:
        _read(spec, environ={"API_TOKEN": "wrong"})
    assert "wrong" not in raised.value.message


def test_429_and_5xx_are_retried_with_backoff_honouring_retry_after(api: ApiServer) -> None:
    waits = Waits()
    api.route(
        "/items",
        Answer.json({}, 429, (("Retry-After", "7"),)),
        Answer.json({}, 503),
        Answer.json({}, 500),
        Answer.json({"items": RECORDS}),
    )
    frame = _read(ImportSpec(f"{api.url}/items", records="items"), backoff=waits.backoff(base_s=0.5))
    assert frame.height == 7
    assert waits.waits == [7.0, 1.0, 2.0]


def test_a_server_that_keeps_failing_gives_one_line_after_the_attempts(api: ApiServer) -> None:
    api.route("/items", Answer.json({}, 502))
    with pytest.raises(DatasetError) as raised:
        _read(ImportSpec(f"{api.url}/items", records="items", attempts=3))
    assert raised.value.message == f"GET {api.url}/items: HTTP 502 Bad Gateway (after 3 attempts)"
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    assert len(api.requests) == 3
    api.route("/slow", Answer.json({}, 429, (("Retry-After", "3600"),)))
    with pytest.raises(DatasetError, match="Retry-After asks for 3600 s"):
        _read(ImportSpec(f"{api.url}/slow", records="items"))


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ([Answer(200, b"{not json")], r"page 1 of http://[^ ]+/items: not JSON: "),
        ([Answer.json({"data": {}})], r"page 1 of .*: no 'data.items' in the page \(its keys: data\)"),
        ([Answer.json({"data": {"items": {"a": 1}}})], r"'data.items' is a JSON dict, not a list of records"),
        ([Answer.json({"data": {"items": [1, 2]}})], r"record 0 of 'data.items' is a JSON int, not an object"),
        ([Answer.json({"data": {"items": []}})], r"/items: no records \(1 page read\)"),
        ([Answer.json({}, 404)], r"GET http://[^ ]+/items: HTTP 404 Not Found$"),
        ([Answer.json({}, 418)], r"HTTP 418 I'm a Teapot$"),
    ],
)
def test_each_failure_is_one_clear_line(api: ApiServer, answers: list[Answer], message: str) -> None:
    api.route("/items", *answers)
    with pytest.raises(DatasetError, match=message) as raised:
        _read(ImportSpec(f"{api.url}/items", records="data.items"))
    assert "\n" not in raised.value.message


def test_a_malformed_second_page_fails_the_whole_import(api: ApiServer) -> None:
    api.route("/p1", Answer.json({"items": RECORDS[:2], "next": "/p2"}))
    api.route("/p2", Answer(200, b'{"items": [{"id": 1}'))
    with pytest.raises(DatasetError, match=r"page 2 of .*/p1: not JSON"):
        _read(ImportSpec(f"{api.url}/p1", records="items", next="next"))


def test_limits_fail_the_import_rather_than_truncate_it(api: ApiServer) -> None:
    _paged(api, size=2)
    spec = {"records": "data.items", "next": "links.next"}
    with pytest.raises(DatasetError, match=r"more than 3 pages \(--max-pages\)"):
        _read(ImportSpec(f"{api.url}/items?page=1", max_pages=3, **spec))
    with pytest.raises(DatasetError, match=r"more than 5 records \(--max-rows\)"):
        _read(ImportSpec(f"{api.url}/items?page=1", max_rows=5, **spec))
    with pytest.raises(DatasetError, match=r"more than the limit of 300 bytes \(--max-bytes\)"):
        _read(ImportSpec(f"{api.url}/items?page=1", max_bytes=300, **spec))
    api.route("/loop", Answer.json({"items": RECORDS, "next": "/loop"}))
    with pytest.raises(DatasetError, match="a page already read"):
        _read(ImportSpec(f"{api.url}/loop", records="items", next="next"))


def test_files_at_urls_are_read_as_files_are(api: ApiServer) -> None:
    api.route("/data.csv", Answer(200, b"a,b\n1,x\n2,y\n", (("Content-Type", "text/plain"),)))
    api.route("/export", Answer(200, b'{"a": 1}\n{"a": 2.5}\n', (("Content-Type", "application/x-ndjson"),)))
    api.route("/object", Answer.json({"rows": []}))
    api.route("/blob", Answer(200, b"a,b\n", (("Content-Type", "application/octet-stream"),)))
    frame = _read(ImportSpec(f"{api.url}/data.csv"))
    assert frame.to_dicts() == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert _read(ImportSpec(f"{api.url}/export"))["a"].to_list() == [1.0, 2.5]
    api.route("/nested.json", Answer.json([{"a": {"b": 1}, "c": "x"}, {"a": {"b": None}, "c": "y"}]))
    assert _read(ImportSpec(f"{api.url}/nested.json")).to_dicts() == [{"a.b": 1, "c": "x"}, {"a.b": None, "c": "y"}]
    api.route("/mixed.json", Answer.json([{"a": 1}, True, 3]))
    with pytest.raises(DatasetError, match=r"^http://[^ ]+/mixed.json: cannot read as JSON"):
        _read(ImportSpec(f"{api.url}/mixed.json"))
    with pytest.raises(DatasetError, match=r"a JSON object, not a list of records; give --records PATH \(its keys"):
        _read(ImportSpec(f"{api.url}/object"))
    with pytest.raises(DatasetError, match="cannot tell the format"):
        _read(ImportSpec(f"{api.url}/blob"))
    with pytest.raises(DatasetError, match=r"^http://[^ ]+/blob: no rows"):
        _read(ImportSpec(f"{api.url}/blob", format="csv"))


def test_the_outbound_policy_refuses_loopback_unless_allowed(api: ApiServer) -> None:
    api.route("/items", Answer.json({"items": RECORDS}))
    spec = ImportSpec(f"{api.url}/items", records="items")
    with pytest.raises(DatasetError, match=r"refused by the outbound policy \(127.0.0.1 is a loopback address\)"):
        read_remote(spec, policy=OutboundPolicy(), environ={})
    with pytest.raises(DatasetError, match=r"refused by the outbound policy \(not allowed or not resolvable\)$"):
        read_remote(spec, policy=OutboundPolicy(), environ={}, explain_refusals=False)
    assert api.requests == []


def test_redirects_are_followed_without_the_headers_on_another_origin(api: ApiServer) -> None:
    other = serve_api()
    second = next(other)
    try:
        second.route("/items", Answer.json({"items": RECORDS}))
        api.route("/moved", Answer(302, b"", (("Location", f"{second.url}/items"),)))
        spec = ImportSpec(f"{api.url}/moved", records="items", headers=(("Authorization", "env:T"),))
        assert _read(spec, environ={"T": "Bearer abc"}).height == 7
        assert api.requests[0][1]["authorization"] == "Bearer abc"
        assert "authorization" not in second.requests[0][1]
    finally:
        other.close()


def test_specs_check_their_arguments_and_keep_secrets_out_of_the_source() -> None:
    spec = ImportSpec("https://user:pw@api.example.com/v1/items?page=1&api_key=abc&token=t#x", records="data")
    assert spec.source == "https://api.example.com/v1/items?page=1"
    assert ImportSpec.from_json(spec.to_json()) == spec
    bad: list[dict[str, Any]] = [
        {"url": "ftp://host/x"},
        {"url": "s3://bucket"},
        {"url": "https://h/x", "next": "links.next"},
        {"url": "https://h/x", "records": "data..items"},
        {"url": "https://h/x", "max_pages": 0},
        {"url": "https://h/x", "headers": (("Bad Name", "v"),)},
        {"url": "https://h/x", "records": "a", "format": "csv"},
    ]
    for arguments in bad:
        with pytest.raises(ConduitError) as raised:
            ImportSpec(**arguments)
        assert raised.value.code is ErrorCode.INVALID_ARGUMENT
    literal = ImportSpec("https://h/x", headers=(("Authorization", "Bearer abc"), ("X-Api-Key", "env:K"), ("A", "b")))
    assert literal.literal_secrets() == ["Authorization"]
    assert literal.env == ("K",)
