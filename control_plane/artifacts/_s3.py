"""Artifacts in S3-compatible object storage: ``s3://<bucket>/<prefix>/sha256/<digest>``.

A PUT (and a multipart upload, at its completion) makes an object visible whole or not at all, so no temporary
object or rename is needed for ``put`` to be atomic.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from contract.errors import ConduitError, ErrorCode
from control_plane.artifacts._abstract import CHUNK_BYTES, ArtifactStore
from control_plane.artifacts._digest import check_digest, is_digest

__all__ = ["S3ArtifactStore"]

_MISSING = {"404", "NoSuchKey", "NotFound"}


def _unavailable(error: Exception) -> ConduitError:
    return ConduitError(ErrorCode.UNAVAILABLE, f"object storage failed: {error}")


def _chunks(body: Any, chunk_bytes: int) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(chunk_bytes)
    finally:
        body.close()


class S3ArtifactStore(ArtifactStore):
    """Artifacts in ``bucket`` under ``prefix``; ``client`` (a boto3 S3 client) is built from the environment's
    credentials and ``endpoint_url`` when not given. ``list_page_size`` is the number of keys per listing request
    (S3's maximum, 1000, unless a test needs several pages)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        client: Any = None,
        list_page_size: int = 1000,
    ) -> None:
        if not bucket:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, "an S3 artifact store needs a bucket")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._keys = f"{self.prefix}/sha256/" if self.prefix else "sha256/"
        self._list_page_size = list_page_size
        self._client = client if client is not None else boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, sha256: str) -> str:
        return self._keys + check_digest(sha256)

    def put(self, sha256: str, source: Path) -> None:
        key = self._key(sha256)
        if self.exists(sha256):
            return
        try:
            self._client.upload_file(str(source), self.bucket, key)
        except (BotoCoreError, ClientError) as error:
            raise _unavailable(error) from error

    def exists(self, sha256: str) -> bool:
        key = self._key(sha256)
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                return False
            raise _unavailable(error) from error
        except BotoCoreError as error:
            raise _unavailable(error) from error
        return True

    def read(self, sha256: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
        key = self._key(sha256)
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                raise ConduitError(ErrorCode.NOT_FOUND, f"artifact {sha256} is not stored") from None
            raise _unavailable(error) from error
        except BotoCoreError as error:
            raise _unavailable(error) from error
        return _chunks(answer["Body"], chunk_bytes)

    def delete(self, sha256: str) -> None:
        try:
            # S3 answers a delete of a missing key with success, which is the contract here.
            self._client.delete_object(Bucket=self.bucket, Key=self._key(sha256))
        except (BotoCoreError, ClientError) as error:
            raise _unavailable(error) from error

    def digests(self) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(
                Bucket=self.bucket, Prefix=self._keys, PaginationConfig={"PageSize": self._list_page_size}
            ):
                for item in page.get("Contents", []):
                    name = item["Key"][len(self._keys) :]
                    if is_digest(name):
                        yield name
        except (BotoCoreError, ClientError) as error:
            raise _unavailable(error) from error

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"
