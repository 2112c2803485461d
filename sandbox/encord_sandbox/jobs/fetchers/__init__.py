"""Fetch the objects a cloud integration points at, the way Encord's servers do after a registration: one
fetcher per cloud (:mod:`.local`, :mod:`.s3`, :mod:`.gcs`, :mod:`.azure`), through the real SDKs with one
cached client per configuration; the URL rules are :mod:`encord_sandbox.jobs.integrations`."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from encord_sandbox.jobs.fetchers import azure, gcs, local, s3
from encord_sandbox.jobs.integrations import IntegrationConfig, fail, parse_object_url


def fetch(config: IntegrationConfig, url: str, max_bytes: int | None = None) -> bytes:
    """Return the bytes of the object ``url`` names, read through ``config``; safe to call from many threads.

    ``max_bytes`` bounds memory: a larger object raises ``FetchError(reason="too_large")`` after reading
    at most ``max_bytes + 1`` bytes (or none, where the size is known up front). Every failure, from a
    malformed URL to an unreachable endpoint, is a :class:`FetchError`.
    """
    if max_bytes is not None and max_bytes < 0:
        raise ValueError("max_bytes must be >= 0")
    bucket, key = parse_object_url(config, url)
    if config.kind == "local":
        data = local.fetch(url, bucket, key, max_bytes)
    elif config.kind == "s3":
        data = s3.fetch(config, url, bucket, key, max_bytes)
    elif config.kind == "gcs":
        data = gcs.fetch(config, url, bucket, key, max_bytes)
    else:
        data = azure.fetch(config, url, bucket, key, max_bytes)
    if max_bytes is not None and len(data) > max_bytes:
        fail(url, "too_large", f"the object is larger than the {max_bytes}-byte limit")
    return data


def list_objects(config: IntegrationConfig, remote_url: str) -> Iterator[list[tuple[str, str, str]]]:
    """Every object under ``remote_url`` (a bucket or folder URL in a form ``config`` reads, ending in ``/``), one
    listing page at a time, as ``(path relative to remote_url, object URL, checksum)``; the object URL is one
    :func:`fetch` reads. The checksum tells an object's versions apart (S3's, GCS's and Azure's ETag; a local
    file's size and modification time)."""
    base = remote_url if remote_url.endswith("/") else remote_url + "/"
    bucket, probe = parse_object_url(config, base + "x")  # the folder's bucket and prefix, by the URL rules
    prefix = probe[:-1]
    raw = base.startswith(("s3://", "gs://"))  # keys verbatim, as the CLIs write them; else percent-encoded
    if config.kind == "local":
        pages = local.list_keys(bucket, prefix)
    elif config.kind == "s3":
        pages = s3.list_keys(config, bucket, prefix)
    elif config.kind == "gcs":
        pages = gcs.list_keys(config, bucket, prefix)
    else:
        pages = azure.list_keys(config, bucket, prefix)
    for page in pages:
        yield [(key[len(prefix) :], base + (key[len(prefix) :] if raw else quote(key[len(prefix) :])), checksum)
               for key, checksum in page if key.startswith(prefix) and not key.endswith("/")]  # fmt: skip
