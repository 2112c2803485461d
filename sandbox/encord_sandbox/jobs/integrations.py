"""Fetch the objects a cloud integration points at, the way Encord's servers do after a registration.

Encord never receives the bytes of a registered file: the registration spec only lists object URLs, and
Encord's backend fetches each one with the integration's credentials. The sandbox mirrors that against
a local directory or an S3 / GCS / Azure Blob endpoint (usually an emulator), so registration jobs, probing
and error reporting behave as they would against Encord.

This module holds the integration's settings and the URL rules: :func:`parse_object_url` is pure, deciding
whether a URL belongs to the integration and mapping it to ``(bucket, key)`` without touching the network or
the disk. The I/O is :mod:`encord_sandbox.jobs.fetchers`, one fetcher per cloud, each turning every failure
into a :class:`FetchError` whose ``reason`` the job runner maps to a unit error.

URL forms accepted per kind (``?``/``#`` are part of the key in ``s3://`` and ``gs://`` URLs, as in the AWS
and gcloud CLIs; the ``http(s)`` forms are percent-decoded and may not carry a query or fragment):

- ``local``: ``file:///abs/path`` (or ``file://localhost/abs/path``) lying under ``root``.
- ``s3``: ``s3://bucket/key``; ``https://bucket.s3[.region].amazonaws.com/key``;
  ``https://s3[.region].amazonaws.com/bucket/key``; and path-style ``http(s)://<endpoint_url host>/bucket/key``.
  AWS URLs are accepted even when ``endpoint_url`` points elsewhere, so a spec written for real buckets
  works unchanged against an emulator.
- ``gcs``: ``gs://bucket/key``; ``https://storage.googleapis.com/bucket/key``;
  ``https://storage.cloud.google.com/bucket/key``; ``https://bucket.storage.googleapis.com/key``; and
  path-style ``http(s)://<gcs_endpoint host>/bucket/key``.
- ``azure``: ``https://<account>.blob.core.windows.net/container/blob`` for the connection string's
  account, and any URL under the connection string's ``BlobEndpoint`` (Azurite's path-style
  ``http://127.0.0.1:PORT/<account>/container/blob``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal, NoReturn, get_args
from urllib.parse import SplitResult, unquote, urlsplit

from encord_sandbox.jobs.endpoints import DEFAULT_PORTS, MASK, azure_settings, endpoint_origin, mask_connection_string

if TYPE_CHECKING:
    pass

__all__ = [
    "FetchError",
    "FetchReason",
    "IntegrationConfig",
    "IntegrationKind",
    "fail",
    "fail_on_status",
    "parse_object_url",
]

IntegrationKind = Literal["local", "s3", "gcs", "azure"]

#: Why a fetch failed. ``wrong_integration``: the URL names another kind, endpoint or storage account;
#: ``unavailable``: the storage could not be reached or answered with an unexpected error (may be transient).
FetchReason = Literal[
    "invalid_url", "wrong_integration", "outside_root", "not_found", "access_denied", "too_large", "unavailable"
]

_KINDS: tuple[str, ...] = get_args(IntegrationKind)

#: Which optional settings each kind understands; anything else set on a config is a mistake worth reporting.
_SETTINGS: dict[str, frozenset[str]] = {
    "local": frozenset({"root"}),
    "s3": frozenset({"endpoint_url", "access_key_id", "secret_access_key", "region"}),
    "gcs": frozenset({"gcs_endpoint"}),
    "azure": frozenset({"azure_connection_string"}),
}

#: Encord documents 16 KB as the longest object URL a registration may carry.
_MAX_URL_BYTES = 16 * 1024


_AWS_S3_HOST = re.compile(r"(?:(?P<bucket>.+)\.)?s3(?:[.-][a-z0-9-]+)?\.amazonaws\.com")
_GCS_PATH_STYLE_HOSTS = frozenset({"storage.googleapis.com", "storage.cloud.google.com"})
_GCS_VIRTUAL_HOST = re.compile(r"(?P<bucket>.+)\.storage\.googleapis\.com")
_AZURE_HOST = re.compile(r"(?P<account>[a-z0-9]+)\.blob\.core\.windows\.net")
_USER_INFO = re.compile(r"://[^/?#]*@")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class FetchError(Exception):
    """A registered object could not be fetched; the message names the URL and why.

    ``url`` has any query string and user-info removed, because those are where signatures and passwords
    live. ``reason`` is machine-readable (:data:`FetchReason`) and ``detail`` is the human explanation.
    """

    def __init__(self, url: str, reason: FetchReason, detail: str) -> None:
        self.url = _redact_url(url)
        self.reason: FetchReason = reason
        self.detail = detail
        super().__init__(f"cannot fetch {self.url}: {detail}")

    def __reduce__(self) -> tuple[type[FetchError], tuple[str, FetchReason, str]]:
        # Prefect pickles a failed task's exception; the default reduce would replay only the message.
        return (FetchError, (self.url, self.reason, self.detail))


@dataclass(frozen=True)
class IntegrationConfig:
    """Where a sandbox cloud integration's objects live and how to authenticate.

    Only the settings of the chosen ``kind`` may be set (``root`` for local; ``endpoint_url``,
    ``access_key_id``, ``secret_access_key``, ``region`` for s3; ``gcs_endpoint`` for gcs;
    ``azure_connection_string`` for azure). Unset S3 credentials and region fall back to boto3's default
    chain and an unset ``gcs_endpoint`` means real GCS with Application Default Credentials, so one type
    covers both emulators and real buckets. Frozen and hashable: it is the key of the client cache.
    ``to_dict`` includes the secrets, because the sandbox must store them; ``repr`` masks them.
    """

    kind: IntegrationKind
    root: str | None = None
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str | None = None
    gcs_endpoint: str | None = None
    azure_connection_string: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown integration kind {self.kind!r}; expected one of {', '.join(_KINDS)}")
        for f in fields(self):
            value = getattr(self, f.name)
            if not (value is None or isinstance(value, str)):
                raise TypeError(f"{f.name} must be a string, not {type(value).__name__}")
            if f.name != "kind" and value is not None and f.name not in _SETTINGS[self.kind]:
                raise ValueError(f"{f.name} does not apply to {self.kind} integrations")
        if self.kind == "local":
            if not self.root or not os.path.isabs(self.root):
                raise ValueError("a local integration needs root: an absolute directory path")
        elif self.kind == "s3":
            if (self.access_key_id is None) != (self.secret_access_key is None):
                raise ValueError("set both access_key_id and secret_access_key, or neither")
            if self.endpoint_url is not None:
                endpoint_origin("endpoint_url", self.endpoint_url)
        elif self.kind == "gcs":
            if self.gcs_endpoint is not None:
                endpoint_origin("gcs_endpoint", self.gcs_endpoint)
        elif not self.azure_connection_string:
            raise ValueError("an azure integration needs azure_connection_string")
        else:
            azure_settings(self.azure_connection_string)

    @classmethod
    def of_kind(cls, kind: str, settings: Mapping[str, Any]) -> IntegrationConfig:
        """A config of ``kind`` from a person's settings: a setting the kind lacks is named, with those it has."""
        if kind not in _KINDS:
            raise ValueError(f"unknown integration kind {kind!r}; expected one of {', '.join(_KINDS)}")
        unknown = sorted(set(settings) - _SETTINGS[kind])
        if unknown:
            raise ValueError(
                f"{', '.join(map(repr, unknown))} is not a setting of {kind} integrations, "
                f"which take: {', '.join(sorted(_SETTINGS[kind]))}"
            )
        return cls(kind=kind, **settings)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, str]:
        """The settings as a JSON-ready dict (unset ones left out), secrets included, for the store."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntegrationConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown keys are an error, not silently dropped."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown integration settings: {', '.join(unknown)}")
        if "kind" not in data:
            raise ValueError("integration settings need a kind")
        return cls(**data)

    def __repr__(self) -> str:
        shown = self.to_dict()
        if self.secret_access_key is not None:
            shown["secret_access_key"] = MASK
        if self.azure_connection_string is not None:
            shown["azure_connection_string"] = mask_connection_string(self.azure_connection_string)
        return f"IntegrationConfig({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


# ------------------------------------------------------------------------------------------- URL parsing


def parse_object_url(config: IntegrationConfig, url: str) -> tuple[str, str]:
    """Map ``url`` to ``(bucket, key)`` for ``config`` without any I/O, or raise :class:`FetchError`.

    For s3/gcs the first element is the bucket, for azure the container, and for local the normalised
    ``root``, with the key relative to it. Local URLs are checked lexically here (``..``, percent-encoded
    or not, may not climb out of ``root``); symlinks can only be judged on disk, so :func:`fetch` checks
    them again on the resolved path.
    """
    if _CONTROL_CHARS.search(url):
        fail(url, "invalid_url", "the URL contains control characters")
    if len(url.encode("utf-8")) > _MAX_URL_BYTES:
        fail(url, "invalid_url", f"the URL is longer than Encord's {_MAX_URL_BYTES // 1024} KB limit")
    if config.kind == "local":
        return _parse_local(config, url)
    if config.kind == "s3":
        return _parse_s3(config, url)
    if config.kind == "gcs":
        return _parse_gcs(config, url)
    return _parse_azure(config, url)


def _parse_local(config: IntegrationConfig, url: str) -> tuple[str, str]:
    if _scheme(url) != "file":
        _not_ours(config, url, "file:///absolute/path under the integration root")
    parts = _urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        fail(url, "invalid_url", "file URLs may not name a host; use file:///absolute/path")
    if parts.query or parts.fragment:
        fail(url, "invalid_url", "'?' and '#' must be percent-encoded in file URLs")
    path = _unquote(url, parts.path)
    if not path.startswith("/"):
        fail(url, "invalid_url", "file URLs must hold an absolute path")
    assert config.root is not None  # guaranteed by IntegrationConfig for kind == "local"
    root = os.path.normpath(config.root)
    target = os.path.normpath(path)
    if target == root or os.path.commonpath([root, target]) != root:
        fail(url, "outside_root", "the path is not a file under the integration root")
    return root, os.path.relpath(target, root)


def _parse_s3(config: IntegrationConfig, url: str) -> tuple[str, str]:
    forms = "s3://bucket/key, https://bucket.s3.<region>.amazonaws.com/key"
    if config.endpoint_url:
        forms += f" or {config.endpoint_url.rstrip('/')}/bucket/key"
    if _scheme(url) == "s3":
        return _split_raw(url, "s3://")
    parts = _split_http(config, url, forms)
    host = parts.hostname or ""
    if config.endpoint_url and _same_origin(parts, endpoint_origin("endpoint_url", config.endpoint_url)):
        return _split_path_style(url, parts.path)
    aws = _AWS_S3_HOST.fullmatch(host)
    if aws is None:
        _not_ours(config, url, forms)
    if aws["bucket"]:
        return aws["bucket"], _key(url, parts.path.lstrip("/"))
    return _split_path_style(url, parts.path)


def _parse_gcs(config: IntegrationConfig, url: str) -> tuple[str, str]:
    forms = "gs://bucket/key, https://storage.googleapis.com/bucket/key"
    if config.gcs_endpoint:
        forms += f" or {config.gcs_endpoint.rstrip('/')}/bucket/key"
    if _scheme(url) == "gs":
        return _split_raw(url, "gs://")
    parts = _split_http(config, url, forms)
    host = parts.hostname or ""
    if host in _GCS_PATH_STYLE_HOSTS or (
        config.gcs_endpoint and _same_origin(parts, endpoint_origin("gcs_endpoint", config.gcs_endpoint))
    ):
        return _split_path_style(url, parts.path)
    virtual = _GCS_VIRTUAL_HOST.fullmatch(host)
    if virtual is None:
        _not_ours(config, url, forms)
    return virtual["bucket"], _key(url, parts.path.lstrip("/"))


def _parse_azure(config: IntegrationConfig, url: str) -> tuple[str, str]:
    assert config.azure_connection_string is not None  # guaranteed by IntegrationConfig for kind == "azure"
    account, blob_endpoint = azure_settings(config.azure_connection_string)
    forms = f"{blob_endpoint}/container/blob"
    if account:
        forms += f" or https://{account}.blob.core.windows.net/container/blob"
    parts = _split_http(config, url, forms)
    endpoint = endpoint_origin("BlobEndpoint", blob_endpoint, allow_path=True)
    if _same_origin(parts, endpoint) and parts.path.startswith(endpoint[2] + "/"):
        return _split_path_style(url, parts.path[len(endpoint[2]) :])
    host = _AZURE_HOST.fullmatch(parts.hostname or "")
    if host is None or account is None:
        _not_ours(config, url, forms)
    if host["account"] != account:
        fail(
            url,
            "wrong_integration",
            f"the URL is for storage account {host['account']!r} but this integration's connection string "
            f"is for {account!r}",
        )
    return _split_path_style(url, parts.path)


def _scheme(url: str) -> str:
    scheme, sep, _ = url.partition(":")
    return scheme.lower() if sep else ""


def _split_raw(url: str, prefix: str) -> tuple[str, str]:
    """``s3://`` and ``gs://`` keys are taken verbatim, as the AWS and gcloud CLIs do: no percent-decoding."""
    bucket, _, key = url[len(prefix) :].partition("/")
    if not bucket:
        fail(url, "invalid_url", "the URL names no bucket")
    if not key:
        fail(url, "invalid_url", "the URL names no object key")
    return bucket, key


def _split_http(config: IntegrationConfig, url: str, forms: str) -> SplitResult:
    if _scheme(url) not in DEFAULT_PORTS:
        _not_ours(config, url, forms)
    parts = _urlsplit(url)
    if parts.username is not None or parts.password is not None:
        fail(url, "invalid_url", "object URLs may not carry credentials")
    if parts.query or parts.fragment:
        fail(url, "invalid_url", "object URLs may not carry a query or fragment; register the plain object URL")
    return parts


def _urlsplit(url: str) -> SplitResult:
    """urlsplit that reports a malformed host or port (checked lazily by urllib) as an invalid URL."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - accessing it is what validates the port
    except ValueError as exc:
        fail(url, "invalid_url", f"the URL is malformed ({exc})")
    return parts


def _split_path_style(url: str, path: str) -> tuple[str, str]:
    """``/bucket/key`` → ``(bucket, key)``, percent-decoded."""
    bucket, _, key = path.lstrip("/").partition("/")
    bucket = _unquote(url, bucket)
    if not bucket:
        fail(url, "invalid_url", "the URL names no bucket")
    return bucket, _key(url, key)


def _key(url: str, raw_key: str) -> str:
    """Decode an object key from an http(s) URL path.

    ``.`` and ``..`` segments are refused: HTTP clients and servers normalise them away, so the object
    fetched would not be the one the URL appears to name.
    """
    if not raw_key:
        fail(url, "invalid_url", "the URL names no object key")
    key = _unquote(url, raw_key)
    if any(segment in (".", "..") for segment in key.split("/")):
        fail(url, "invalid_url", "object keys in http(s) URLs may not contain '.' or '..' segments")
    return key


def _unquote(url: str, text: str) -> str:
    try:
        decoded = unquote(text, errors="strict")
    except UnicodeDecodeError:
        fail(url, "invalid_url", "percent-escapes in the URL do not decode as UTF-8")
    if _CONTROL_CHARS.search(decoded):
        fail(url, "invalid_url", "the URL encodes control characters")
    return decoded


def _same_origin(parts: SplitResult, origin: tuple[str, int, str]) -> bool:
    """Same host and port. The scheme only decides the default port: the URL names the object, and the
    sandbox always reaches it through the configured endpoint, whatever scheme the spec was written with."""
    port = parts.port or DEFAULT_PORTS[parts.scheme.lower()]
    return (parts.hostname or "", port) == origin[:2]


def _apparent_kind(url: str) -> str | None:
    """Which kind of storage a URL looks like it belongs to, for a helpful wrong-integration message."""
    scheme = _scheme(url)
    if scheme in ("file", "s3", "gs"):
        return {"file": "local", "s3": "s3", "gs": "gcs"}[scheme]
    if scheme not in DEFAULT_PORTS:
        return None
    host = _urlsplit(url).hostname or ""
    if host.endswith(".amazonaws.com"):
        return "s3"
    if host in _GCS_PATH_STYLE_HOSTS or host.endswith(".storage.googleapis.com"):
        return "gcs"
    if host.endswith(".blob.core.windows.net"):
        return "azure"
    return None


def _not_ours(config: IntegrationConfig, url: str, forms: str) -> NoReturn:
    apparent = _apparent_kind(url)
    if apparent is not None and apparent != config.kind:
        fail(url, "wrong_integration", f"this is a {apparent} URL but the integration is {config.kind}")
    if apparent is None and _scheme(url) not in DEFAULT_PORTS:
        fail(url, "invalid_url", f"unsupported URL for this {config.kind} integration; expected {forms}")
    fail(url, "wrong_integration", f"the URL does not belong to this {config.kind} integration; expected {forms}")


def fail(url: str, reason: FetchReason, detail: str) -> NoReturn:
    raise FetchError(url, reason, detail)


def _redact_url(url: str) -> str:
    """Drop the query and user-info of http(s) URLs (signatures, SAS tokens, passwords) before showing it.

    Plain string surgery rather than urlsplit, so that even a URL too malformed to parse is shown safely.
    """
    if _scheme(url) not in DEFAULT_PORTS:
        return url
    base, has_query, _ = url.partition("?")
    return _USER_INFO.sub("://", base, count=1) + ("?<redacted>" if has_query else "")


def fail_on_status(url: str, status: int | None, what: str) -> NoReturn:
    """Turn an HTTP status from any of the SDKs into the matching reason."""
    if status == 404:
        fail(url, "not_found", f"no such object ({what})")
    if status in (401, 403):
        fail(url, "access_denied", f"access denied ({what})")
    fail(url, "unavailable", what)
