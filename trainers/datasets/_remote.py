"""Data sets from HTTP APIs and object storage (``ImportSpec``), read by the file readers.

What arrives is written to a private temporary file and read by ``read_file``, so a remote CSV, Parquet, NDJSON or
JSON file gets exactly the type inference, canonical dtypes and errors of a local one. JSON API pages (``records``)
are flattened (``address.city``) and written as NDJSON for the same reason. Messages name the URL without
credentials or secret parameters, never a header value.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import polars as pl

from contract.entities import ImportSpec
from contract.outbound import OutboundPolicy
from trainers._errors import DatasetError, first_line
from trainers.datasets._cleaning import DEFAULT_NULL_VALUES
from trainers.datasets._files import read_file
from trainers.datasets._http import DEFAULT_BACKOFF, Backoff, get
from trainers.datasets._pages import flatten, link_next, page_records

__all__ = ["read_remote"]

_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "json"}
_CONTENT_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/x-ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/json": "json",
}
_FILE_SUFFIX = {"csv": ".csv", "parquet": ".parquet", "ndjson": ".ndjson", "json": ".json"}


def read_remote(
    spec: ImportSpec,
    *,
    policy: OutboundPolicy,
    environ: Mapping[str, str],
    s3_endpoint_url: str | None = None,
    s3_client: Any = None,
    explain_refusals: bool = True,
    backoff: Backoff = DEFAULT_BACKOFF,
    null_values: Sequence[str] = DEFAULT_NULL_VALUES,
) -> pl.DataFrame:
    """Fetch ``spec.url`` (every page of it) and read it as a data set (canonical dtypes).

    Args:
        policy: where HTTP requests may go (redirects and next pages included).
        environ: where ``env:VAR`` header values are read.
        s3_endpoint_url, s3_client: the S3-compatible store of ``s3://`` URLs (a boto3 client built from the AWS
            environment and this endpoint when no client is given).
        explain_refusals: whether errors say why the policy refused a destination (see ``get``).
        null_values: text values that mean missing (see ``read_file``).

    Raises:
        DatasetError: one line for whatever went wrong (see ``get``, ``page_records``, ``read_file``); a run past
            ``max_pages``, ``max_bytes`` or ``max_rows``; no records at all.
    """
    shown = spec.source
    if spec.scheme == "s3":
        body, content_type = _s3_object(spec, s3_endpoint_url, s3_client)
        if spec.records:
            found, _ = page_records(body, shown, records=spec.records, next_path="")
            return _read_records(found, spec, shown, null_values, pages=1)
        return _read_body(body, _format(spec, content_type), spec, shown, null_values)
    headers = spec.resolve_headers(environ)
    if not spec.records:
        answer = get(
            spec.url, headers=headers, policy=policy, timeout_s=spec.timeout_s, attempts=spec.attempts,
            max_bytes=spec.max_bytes, explain_refusals=explain_refusals, backoff=backoff,
        )  # fmt: skip
        return _read_body(answer.body, _format(spec, answer.content_type), spec, shown, null_values)
    records: list[dict[str, Any]] = []
    url: str | None = spec.url
    seen: set[str] = set()
    budget = spec.max_bytes
    pages = 0
    while url is not None:
        if pages == spec.max_pages:
            raise DatasetError(f"{shown}: more than {spec.max_pages} pages (--max-pages)")
        seen.add(url)
        pages += 1
        answer = get(
            url, headers=headers, policy=policy, timeout_s=spec.timeout_s, attempts=spec.attempts,
            max_bytes=spec.max_bytes, budget=budget, explain_refusals=explain_refusals, backoff=backoff,
        )  # fmt: skip
        budget -= len(answer.body)
        where = f"page {pages} of {shown}"
        found, following = page_records(answer.body, where, records=spec.records, next_path=spec.next)
        records.extend(found)
        if len(records) > spec.max_rows:
            raise DatasetError(f"{shown}: more than {spec.max_rows} records (--max-rows)")
        if following is None and not spec.next:
            following = link_next(answer.link)
        url = urljoin(answer.url, following) if following else None
        if url is not None and url in seen:
            raise DatasetError(f"{where}: the next page is a page already read (a loop)")
    return _read_records(records, spec, shown, null_values, pages=pages)


def _format(spec: ImportSpec, content_type: str) -> str:
    if spec.format:
        return spec.format
    suffix = PurePosixPath(unquote(urlsplit(spec.url).path)).suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    if media in _CONTENT_TYPES:
        return _CONTENT_TYPES[media]
    if media.endswith("+json"):
        return "json"
    raise DatasetError(
        f"{spec.source}: cannot tell the format from the URL or the Content-Type {media or '(none)'!r}; "
        "give --format csv|parquet|ndjson|json"
    )


def _read_body(body: bytes, kind: str, spec: ImportSpec, shown: str, null_values: Sequence[str]) -> pl.DataFrame:
    if kind == "json":
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise DatasetError(f"{shown}: not JSON: {exc}") from None
        if isinstance(document, dict):
            keys = ", ".join(list(document)[:10])
            raise DatasetError(
                f"{shown}: the answer is a JSON object, not a list of records; give --records PATH (its keys: {keys})"
            )
        records = document if isinstance(document, list) else []
        # Nested records are flattened as API pages are; anything else is the file reader's to accept or refuse.
        if all(isinstance(r, dict) for r in records) and any(_nested(r) for r in records):
            return _read_records(records, spec, shown, null_values, pages=1)
    return _read_file(body, kind, spec, shown, null_values)


def _nested(record: dict[str, Any]) -> bool:
    return any(isinstance(value, dict) for value in record.values())


def _read_records(
    records: list[dict[str, Any]], spec: ImportSpec, shown: str, null_values: Sequence[str], *, pages: int
) -> pl.DataFrame:
    if not records:
        raise DatasetError(f"{shown}: no records ({pages} page{'s' if pages != 1 else ''} read)")
    lines = "".join(json.dumps(flatten(record), allow_nan=False) + "\n" for record in records)
    return _read_file(lines.encode(), "ndjson", spec, shown, null_values)


def _read_file(body: bytes, kind: str, spec: ImportSpec, shown: str, null_values: Sequence[str]) -> pl.DataFrame:
    with tempfile.TemporaryDirectory(prefix="conduit-import-") as folder:
        path = Path(folder) / f"data{_FILE_SUFFIX[kind]}"
        path.write_bytes(body)
        try:
            frame = read_file(path, null_values=null_values)
        except DatasetError as exc:
            # The reader names its file: the user knows the URL, not the temporary path.
            raise DatasetError(exc.message.replace(str(path), shown)) from None
    if frame.height > spec.max_rows:
        raise DatasetError(f"{shown}: {frame.height} rows, more than {spec.max_rows} (--max-rows)")
    return frame


def _s3_object(spec: ImportSpec, endpoint_url: str | None, client: Any) -> tuple[bytes, str]:
    # Imported here: boto3 takes a while to import, and only s3:// imports need it.
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    parts = urlsplit(spec.url)
    bucket, key = parts.netloc, unquote(parts.path.lstrip("/"))
    shown = spec.source
    try:
        client = client if client is not None else boto3.client("s3", endpoint_url=endpoint_url or None)
        answer = client.get_object(Bucket=bucket, Key=key)
        size = int(answer.get("ContentLength", 0))
        if size > spec.max_bytes:
            answer["Body"].close()
            raise DatasetError(f"{shown}: {size} bytes, more than the limit of {spec.max_bytes} (--max-bytes)")
        with answer["Body"] as stream:
            body = stream.read(spec.max_bytes + 1)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        reason = {
            "NoSuchKey": "no such object",
            "404": "no such object",
            "NoSuchBucket": f"no such bucket {bucket!r}",
            "AccessDenied": "access denied (check the AWS credentials of this process)",
            "403": "access denied (check the AWS credentials of this process)",
        }.get(code, first_line(exc))
        raise DatasetError(f"{shown}: {reason}") from None
    except BotoCoreError as exc:
        raise DatasetError(f"{shown}: object storage failed: {first_line(exc)}") from None
    if len(body) > spec.max_bytes:
        raise DatasetError(f"{shown}: more than the limit of {spec.max_bytes} bytes (--max-bytes)")
    return body, str(answer.get("ContentType", ""))
