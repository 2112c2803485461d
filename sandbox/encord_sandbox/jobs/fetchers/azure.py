"""Azure Blob Storage (and Azurite) through azure-storage-blob."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING

from encord_sandbox.jobs.fetchers.clients import (
    CLIENT_CACHE_SIZE,
    CONNECT_TIMEOUT_S,
    READ_TIMEOUT_S,
    RETRY_ATTEMPTS,
    cached_client,
)
from encord_sandbox.jobs.integrations import IntegrationConfig, fail, fail_on_status

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

#: azure-storage-blob sends its newest API version, which Azurite 3.35.0 (the last release for Node 20)
#: rejects unless started with --skipApiVersionCheck. GET Blob is unchanged across versions, so pinning one
#: that Azure, Azurite and azure-storage-blob >= 12.20 all accept costs nothing.
_AZURE_API_VERSION = "2024-05-04"


@functools.lru_cache(maxsize=CLIENT_CACHE_SIZE)
def _azure_client(config: IntegrationConfig) -> BlobServiceClient:
    from azure.storage.blob import BlobServiceClient, ExponentialRetry

    assert config.azure_connection_string is not None  # guaranteed by IntegrationConfig for kind == "azure"
    return BlobServiceClient.from_connection_string(
        config.azure_connection_string,
        api_version=_AZURE_API_VERSION,
        connection_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        # The storage SDK's default backs off 18 s, 24 s, 42 s...: over a minute per unreachable object.
        # Its n-th retry waits initial_backoff + increment_base**n, so this waits about 2 s, then 4 s.
        retry_policy=ExponentialRetry(
            initial_backoff=0, increment_base=2, retry_total=RETRY_ATTEMPTS - 1, random_jitter_range=1
        ),
    )


def fetch(config: IntegrationConfig, url: str, container: str, blob: str, max_bytes: int | None) -> bytes:
    from azure.core.exceptions import AzureError, HttpResponseError

    try:
        blob_client = cached_client(_azure_client, config).get_blob_client(container, blob)
        if max_bytes is None:
            return blob_client.download_blob().readall()
        return blob_client.download_blob(offset=0, length=max_bytes + 1).readall()
    except HttpResponseError as exc:
        if exc.status_code == 416 and max_bytes is not None:
            return b""  # only an empty blob cannot satisfy a range that starts at byte 0
        # azure-storage-blob attaches the service's error code to the exception at runtime.
        code = getattr(exc, "error_code", None)
        if code == "ContainerNotFound":
            fail(url, "not_found", f"container {container!r} does not exist")
        fail_on_status(url, exc.status_code, f"Azure answered {code or exc.status_code}")
    except AzureError as exc:
        fail(url, "unavailable", f"Azure request failed: {type(exc).__name__}")


def list_keys(config: IntegrationConfig, container: str, prefix: str) -> Iterator[list[tuple[str, str]]]:
    """The ``(name, ETag)`` of every blob under ``prefix``, one listing page at a time."""
    blobs = cached_client(_azure_client, config).get_container_client(container).list_blobs(name_starts_with=prefix)
    for page in blobs.by_page():
        yield [(blob.name, str(blob.etag).strip('"')) for blob in page]
