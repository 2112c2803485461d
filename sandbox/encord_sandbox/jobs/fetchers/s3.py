"""S3 (and S3-compatible servers) through boto3."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from encord_sandbox.jobs.fetchers.clients import (
    CLIENT_CACHE_SIZE,
    CONNECT_TIMEOUT_S,
    READ_TIMEOUT_S,
    RETRY_ATTEMPTS,
    cached_client,
)
from encord_sandbox.jobs.integrations import IntegrationConfig, fail, fail_on_status

if TYPE_CHECKING:
    pass


@functools.lru_cache(maxsize=CLIENT_CACHE_SIZE)
def _s3_client(config: IntegrationConfig) -> Any:
    import boto3
    from botocore.config import Config

    # A private session: boto3's default session is shared process-wide and not thread-safe to build from.
    return boto3.session.Session().client(
        "s3",
        endpoint_url=config.endpoint_url.rstrip("/") if config.endpoint_url else None,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        region_name=config.region,
        config=Config(
            signature_version="s3v4",
            # S3-compatible servers on an IP or a private host name only understand path-style requests.
            s3={"addressing_style": "path" if config.endpoint_url else "auto"},
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            retries={"mode": "standard", "max_attempts": RETRY_ATTEMPTS},
        ),
    )


def fetch(config: IntegrationConfig, url: str, bucket: str, key: str, max_bytes: int | None) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        client = cached_client(_s3_client, config)
        response = client.get_object(Bucket=bucket, Key=key)
        body = response["Body"]
        try:
            if max_bytes is not None and response["ContentLength"] > max_bytes:
                fail(url, "too_large", f"the object is larger than the {max_bytes}-byte limit")
            data: bytes = body.read()
        finally:
            body.close()
        return data
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.get("Code") or str(status)
        if code == "NoSuchBucket":
            fail(url, "not_found", f"bucket {bucket!r} does not exist")
        fail_on_status(url, status, f"S3 answered {code}")
    except NoCredentialsError:
        fail(url, "access_denied", "no AWS credentials: set access_key_id/secret_access_key on the integration")
    except BotoCoreError as exc:
        fail(url, "unavailable", f"S3 request failed: {exc}")


def list_keys(config: IntegrationConfig, bucket: str, prefix: str) -> Iterator[list[tuple[str, str]]]:
    """The ``(key, ETag)`` of every object under ``prefix``, one listing page at a time (a cloud-synced folder's
    scan)."""
    client = cached_client(_s3_client, config)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield [(item["Key"], str(item["ETag"]).strip('"')) for item in page.get("Contents", [])]
