"""Google Cloud Storage (and fake-gcs-server) through google-cloud-storage."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING

from encord_sandbox.jobs.fetchers.clients import (
    CLIENT_CACHE_SIZE,
    CONNECT_TIMEOUT_S,
    READ_TIMEOUT_S,
    cached_client,
)
from encord_sandbox.jobs.integrations import IntegrationConfig, fail, fail_on_status

if TYPE_CHECKING:
    from google.cloud import storage

#: Total time a GCS download may spend retrying; the library's default of 120 s would pin a worker thread.
_GCS_RETRY_TIMEOUT_S = 30.0


@functools.lru_cache(maxsize=CLIENT_CACHE_SIZE)
def _gcs_client(config: IntegrationConfig) -> storage.Client:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    if config.gcs_endpoint is None:
        return storage.Client()
    # Emulators take no credentials, and real ones would make the client fetch OAuth tokens from Google
    # (which retries for minutes offline). The project is required by the constructor but unused by reads.
    return storage.Client(
        project="encord-sandbox",
        credentials=AnonymousCredentials(),
        # A trailing slash would double up in every request path ("//download/...") and 404.
        client_options=ClientOptions(api_endpoint=config.gcs_endpoint.rstrip("/")),
    )


def fetch(config: IntegrationConfig, url: str, bucket: str, key: str, max_bytes: int | None) -> bytes:
    from google.api_core import exceptions as gexc
    from google.auth.exceptions import GoogleAuthError
    from google.cloud.storage.retry import DEFAULT_RETRY
    from requests import RequestException

    try:
        blob = cached_client(_gcs_client, config).bucket(bucket).blob(key)
        retry = DEFAULT_RETRY.with_timeout(_GCS_RETRY_TIMEOUT_S)
        timeout = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
        if max_bytes is None:  # a whole-object read, so the library verifies the object's checksum
            data: bytes = blob.download_as_bytes(timeout=timeout, retry=retry)
        else:  # `end` is inclusive: one byte past the limit tells that the object exceeds it
            data = blob.download_as_bytes(start=0, end=max_bytes, timeout=timeout, retry=retry)
        return data
    except gexc.RequestRangeNotSatisfiable:
        return b""  # only an empty object cannot satisfy a range that starts at byte 0
    except gexc.GoogleAPICallError as exc:
        fail_on_status(url, exc.code, f"GCS answered {exc.code}")
    except gexc.RetryError as exc:
        fail(url, "unavailable", f"GCS request kept failing for {_GCS_RETRY_TIMEOUT_S:.0f}s ({exc.cause})")
    except GoogleAuthError as exc:
        fail(url, "access_denied", f"no usable Google credentials ({type(exc).__name__})")
    except RequestException as exc:
        fail(url, "unavailable", f"GCS request failed: {type(exc).__name__}")


def list_keys(config: IntegrationConfig, bucket: str, prefix: str) -> Iterator[list[tuple[str, str]]]:
    """The ``(name, ETag)`` of every object under ``prefix``, one listing page at a time."""
    blobs = cached_client(_gcs_client, config).list_blobs(bucket, prefix=prefix)
    for page in blobs.pages:
        yield [(blob.name, str(blob.etag or blob.md5_hash or blob.generation)) for blob in page]
