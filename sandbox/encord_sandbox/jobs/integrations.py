"""Fetch the objects a cloud integration points at, the way Encord's servers do after a registration.

Encord never receives the bytes of a registered file: the registration spec only lists object URLs, and
Encord's backend fetches each one with the integration's credentials. The sandbox mirrors that against
a local directory or an S3 / GCS / Azure Blob endpoint (usually an emulator), so registration jobs, probing
and error reporting behave as they would against Encord.

Two layers, kept apart so the URL rules can be unit-tested without any server:

- :func:`parse_object_url` is pure: it decides whether a URL belongs to the integration and maps it to
  ``(bucket, key)``. It never touches the network or the disk.
- :func:`fetch` does the I/O through the real SDKs, with one cached client per configuration, and turns
  every failure into a :class:`FetchError` whose ``reason`` the job runner can map to a unit error.

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

import functools
import os
import re
import stat
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar, get_args
from urllib.parse import SplitResult, unquote, urlsplit

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient
    from google.cloud import storage

__all__ = [
    "FetchError",
    "FetchReason",
    "IntegrationConfig",
    "IntegrationKind",
    "fetch",
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

_CONNECT_TIMEOUT_S = 10.0
#: Per socket read, not per object: large videos stream for longer than this without tripping it.
_READ_TIMEOUT_S = 60.0
#: Total time a GCS download may spend retrying; the library's default of 120 s would pin a worker thread.
_GCS_RETRY_TIMEOUT_S = 30.0
_RETRY_ATTEMPTS = 3
#: Integrations are few; the bound only stops a churn of edited configs from keeping old clients alive.
_CLIENT_CACHE_SIZE = 32

#: azure-storage-blob sends its newest API version, which Azurite 3.35.0 (the last release for Node 20)
#: rejects unless started with --skipApiVersionCheck. GET Blob is unchanged across versions, so pinning one
#: that Azure, Azurite and azure-storage-blob >= 12.20 all accept costs nothing.
_AZURE_API_VERSION = "2024-05-04"

_AWS_S3_HOST = re.compile(r"(?:(?P<bucket>.+)\.)?s3(?:[.-][a-z0-9-]+)?\.amazonaws\.com")
_GCS_PATH_STYLE_HOSTS = frozenset({"storage.googleapis.com", "storage.cloud.google.com"})
_GCS_VIRTUAL_HOST = re.compile(r"(?P<bucket>.+)\.storage\.googleapis\.com")
_AZURE_HOST = re.compile(r"(?P<account>[a-z0-9]+)\.blob\.core\.windows\.net")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_USER_INFO = re.compile(r"://[^/?#]*@")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_MASK = "***"


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
                _endpoint_origin("endpoint_url", self.endpoint_url)
        elif self.kind == "gcs":
            if self.gcs_endpoint is not None:
                _endpoint_origin("gcs_endpoint", self.gcs_endpoint)
        elif not self.azure_connection_string:
            raise ValueError("an azure integration needs azure_connection_string")
        else:
            _azure_settings(self.azure_connection_string)

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
            shown["secret_access_key"] = _MASK
        if self.azure_connection_string is not None:
            shown["azure_connection_string"] = _mask_connection_string(self.azure_connection_string)
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
        _fail(url, "invalid_url", "the URL contains control characters")
    if len(url.encode("utf-8")) > _MAX_URL_BYTES:
        _fail(url, "invalid_url", f"the URL is longer than Encord's {_MAX_URL_BYTES // 1024} KB limit")
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
        _fail(url, "invalid_url", "file URLs may not name a host; use file:///absolute/path")
    if parts.query or parts.fragment:
        _fail(url, "invalid_url", "'?' and '#' must be percent-encoded in file URLs")
    path = _unquote(url, parts.path)
    if not path.startswith("/"):
        _fail(url, "invalid_url", "file URLs must hold an absolute path")
    assert config.root is not None  # guaranteed by IntegrationConfig for kind == "local"
    root = os.path.normpath(config.root)
    target = os.path.normpath(path)
    if target == root or os.path.commonpath([root, target]) != root:
        _fail(url, "outside_root", "the path is not a file under the integration root")
    return root, os.path.relpath(target, root)


def _parse_s3(config: IntegrationConfig, url: str) -> tuple[str, str]:
    forms = "s3://bucket/key, https://bucket.s3.<region>.amazonaws.com/key"
    if config.endpoint_url:
        forms += f" or {config.endpoint_url.rstrip('/')}/bucket/key"
    if _scheme(url) == "s3":
        return _split_raw(url, "s3://")
    parts = _split_http(config, url, forms)
    host = parts.hostname or ""
    if config.endpoint_url and _same_origin(parts, _endpoint_origin("endpoint_url", config.endpoint_url)):
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
        config.gcs_endpoint and _same_origin(parts, _endpoint_origin("gcs_endpoint", config.gcs_endpoint))
    ):
        return _split_path_style(url, parts.path)
    virtual = _GCS_VIRTUAL_HOST.fullmatch(host)
    if virtual is None:
        _not_ours(config, url, forms)
    return virtual["bucket"], _key(url, parts.path.lstrip("/"))


def _parse_azure(config: IntegrationConfig, url: str) -> tuple[str, str]:
    assert config.azure_connection_string is not None  # guaranteed by IntegrationConfig for kind == "azure"
    account, blob_endpoint = _azure_settings(config.azure_connection_string)
    forms = f"{blob_endpoint}/container/blob"
    if account:
        forms += f" or https://{account}.blob.core.windows.net/container/blob"
    parts = _split_http(config, url, forms)
    endpoint = _endpoint_origin("BlobEndpoint", blob_endpoint, allow_path=True)
    if _same_origin(parts, endpoint) and parts.path.startswith(endpoint[2] + "/"):
        return _split_path_style(url, parts.path[len(endpoint[2]) :])
    host = _AZURE_HOST.fullmatch(parts.hostname or "")
    if host is None or account is None:
        _not_ours(config, url, forms)
    if host["account"] != account:
        _fail(
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
        _fail(url, "invalid_url", "the URL names no bucket")
    if not key:
        _fail(url, "invalid_url", "the URL names no object key")
    return bucket, key


def _split_http(config: IntegrationConfig, url: str, forms: str) -> SplitResult:
    if _scheme(url) not in _DEFAULT_PORTS:
        _not_ours(config, url, forms)
    parts = _urlsplit(url)
    if parts.username is not None or parts.password is not None:
        _fail(url, "invalid_url", "object URLs may not carry credentials")
    if parts.query or parts.fragment:
        _fail(url, "invalid_url", "object URLs may not carry a query or fragment; register the plain object URL")
    return parts


def _urlsplit(url: str) -> SplitResult:
    """urlsplit that reports a malformed host or port (checked lazily by urllib) as an invalid URL."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - accessing it is what validates the port
    except ValueError as exc:
        _fail(url, "invalid_url", f"the URL is malformed ({exc})")
    return parts


def _split_path_style(url: str, path: str) -> tuple[str, str]:
    """``/bucket/key`` → ``(bucket, key)``, percent-decoded."""
    bucket, _, key = path.lstrip("/").partition("/")
    bucket = _unquote(url, bucket)
    if not bucket:
        _fail(url, "invalid_url", "the URL names no bucket")
    return bucket, _key(url, key)


def _key(url: str, raw_key: str) -> str:
    """Decode an object key from an http(s) URL path.

    ``.`` and ``..`` segments are refused: HTTP clients and servers normalise them away, so the object
    fetched would not be the one the URL appears to name.
    """
    if not raw_key:
        _fail(url, "invalid_url", "the URL names no object key")
    key = _unquote(url, raw_key)
    if any(segment in (".", "..") for segment in key.split("/")):
        _fail(url, "invalid_url", "object keys in http(s) URLs may not contain '.' or '..' segments")
    return key


def _unquote(url: str, text: str) -> str:
    try:
        decoded = unquote(text, errors="strict")
    except UnicodeDecodeError:
        _fail(url, "invalid_url", "percent-escapes in the URL do not decode as UTF-8")
    if _CONTROL_CHARS.search(decoded):
        _fail(url, "invalid_url", "the URL encodes control characters")
    return decoded


def _endpoint_origin(name: str, endpoint: str, *, allow_path: bool = False) -> tuple[str, int, str]:
    """``(host, port, path)`` of a configured endpoint; raises ValueError naming the setting if malformed."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        raise ValueError(f"{name} has a malformed host or port") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{name} must be an http(s)://host[:port] URL")
    path = parts.path.rstrip("/")
    if (path and not allow_path) or parts.query or parts.fragment:
        raise ValueError(f"{name} must be a bare http(s)://host[:port] URL with no path or query")
    return parts.hostname, port or _DEFAULT_PORTS[parts.scheme], path


def _same_origin(parts: SplitResult, origin: tuple[str, int, str]) -> bool:
    """Same host and port. The scheme only decides the default port: the URL names the object, and the
    sandbox always reaches it through the configured endpoint, whatever scheme the spec was written with."""
    port = parts.port or _DEFAULT_PORTS[parts.scheme.lower()]
    return (parts.hostname or "", port) == origin[:2]


def _apparent_kind(url: str) -> str | None:
    """Which kind of storage a URL looks like it belongs to, for a helpful wrong-integration message."""
    scheme = _scheme(url)
    if scheme in ("file", "s3", "gs"):
        return {"file": "local", "s3": "s3", "gs": "gcs"}[scheme]
    if scheme not in _DEFAULT_PORTS:
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
        _fail(url, "wrong_integration", f"this is a {apparent} URL but the integration is {config.kind}")
    if apparent is None and _scheme(url) not in _DEFAULT_PORTS:
        _fail(url, "invalid_url", f"unsupported URL for this {config.kind} integration; expected {forms}")
    _fail(url, "wrong_integration", f"the URL does not belong to this {config.kind} integration; expected {forms}")


def _fail(url: str, reason: FetchReason, detail: str) -> NoReturn:
    raise FetchError(url, reason, detail)


def _redact_url(url: str) -> str:
    """Drop the query and user-info of http(s) URLs (signatures, SAS tokens, passwords) before showing it.

    Plain string surgery rather than urlsplit, so that even a URL too malformed to parse is shown safely.
    """
    if _scheme(url) not in _DEFAULT_PORTS:
        return url
    base, has_query, _ = url.partition("?")
    return _USER_INFO.sub("://", base, count=1) + ("?<redacted>" if has_query else "")


# ---------------------------------------------------------------------------------- Azure connection strings


@functools.lru_cache(maxsize=_CLIENT_CACHE_SIZE)
def _azure_settings(connection_string: str) -> tuple[str | None, str]:
    """``(account name, blob endpoint without trailing slash)`` from a connection string.

    Mirrors azure-storage-blob's own parsing (``;``-separated, case-insensitive keys, an explicit
    ``BlobEndpoint`` winning over ``AccountName`` + ``EndpointSuffix``) so URL matching agrees with where
    the SDK will actually send requests. Errors never quote the string, which holds the account key.
    """
    settings: dict[str, str] = {}
    for item in connection_string.rstrip(";").split(";"):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError("azure_connection_string is malformed (expected key=value pairs separated by ';')")
        settings[key.upper()] = value
    if settings.get("USEDEVELOPMENTSTORAGE") == "true":
        return "devstoreaccount1", "http://127.0.0.1:10000/devstoreaccount1"
    account = settings.get("ACCOUNTNAME")
    endpoint = settings.get("BLOBENDPOINT")
    if endpoint is None:
        if account is None:
            raise ValueError("azure_connection_string needs AccountName or BlobEndpoint")
        suffix = settings.get("ENDPOINTSUFFIX")
        # Like the SDK: the protocol setting only counts when an EndpointSuffix is given too.
        protocol = settings.get("DEFAULTENDPOINTSPROTOCOL", "https") if suffix else "https"
        endpoint = f"{protocol}://{account}.blob.{suffix or 'core.windows.net'}"
    _endpoint_origin("BlobEndpoint", endpoint, allow_path=True)
    return account, endpoint.rstrip("/")


def _mask_connection_string(connection_string: str) -> str:
    secret_keys = {"ACCOUNTKEY", "SHAREDACCESSSIGNATURE"}
    masked = []
    for item in connection_string.split(";"):
        key, sep, _ = item.partition("=")
        masked.append(f"{key}={_MASK}" if sep and key.strip().upper() in secret_keys else item)
    return ";".join(masked)


# ---------------------------------------------------------------------------------------------------- fetch


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
        data = _fetch_local(url, bucket, key, max_bytes)
    elif config.kind == "s3":
        data = _fetch_s3(config, url, bucket, key, max_bytes)
    elif config.kind == "gcs":
        data = _fetch_gcs(config, url, bucket, key, max_bytes)
    else:
        data = _fetch_azure(config, url, bucket, key, max_bytes)
    if max_bytes is not None and len(data) > max_bytes:
        _fail(url, "too_large", f"the object is larger than the {max_bytes}-byte limit")
    return data


def _fetch_local(url: str, root: str, relative: str, max_bytes: int | None) -> bytes:
    real_root = os.path.realpath(root)
    target = os.path.realpath(os.path.join(root, relative))
    if os.path.commonpath([real_root, target]) != real_root:
        _fail(url, "outside_root", "the path resolves (through a symlink) to a file outside the integration root")
    # O_NOFOLLOW: the resolved path must not have become a symlink since it was checked.
    # O_NONBLOCK: opening a FIFO placed under root must not hang the worker thread.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(target, flags)
    except (FileNotFoundError, NotADirectoryError):
        _fail(url, "not_found", "no such file")
    except PermissionError:
        _fail(url, "access_denied", "the sandbox may not read this file")
    except OSError as exc:
        _fail(url, "unavailable", f"the file could not be opened ({exc.strerror})")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            _fail(url, "not_found", "not a regular file")
        if max_bytes is not None and info.st_size > max_bytes:
            _fail(url, "too_large", f"the file is larger than the {max_bytes}-byte limit")
        with open(fd, "rb", closefd=False) as file:
            return file.read() if max_bytes is None else file.read(max_bytes + 1)
    except OSError as exc:
        _fail(url, "unavailable", f"the file could not be read ({exc.strerror})")
    finally:
        os.close(fd)


_client_lock = threading.Lock()
_Client = TypeVar("_Client")


def _cached_client(factory: Callable[[IntegrationConfig], _Client], config: IntegrationConfig) -> _Client:
    """Build each config's client once even when many worker threads ask at the same moment.

    The lru_caches are thread-safe for their own bookkeeping but would let two threads both run the
    factory; the lock makes the first build the only one. Built clients are used concurrently without it:
    boto3 and azure-storage-blob document their clients as thread-safe, and a google-cloud-storage read
    only shares the client's requests session, whose urllib3 connection pool is thread-safe.
    """
    with _client_lock:
        return factory(config)


@functools.lru_cache(maxsize=_CLIENT_CACHE_SIZE)
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
            connect_timeout=_CONNECT_TIMEOUT_S,
            read_timeout=_READ_TIMEOUT_S,
            retries={"mode": "standard", "max_attempts": _RETRY_ATTEMPTS},
        ),
    )


def _fetch_s3(config: IntegrationConfig, url: str, bucket: str, key: str, max_bytes: int | None) -> bytes:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        client = _cached_client(_s3_client, config)
        response = client.get_object(Bucket=bucket, Key=key)
        body = response["Body"]
        try:
            if max_bytes is not None and response["ContentLength"] > max_bytes:
                _fail(url, "too_large", f"the object is larger than the {max_bytes}-byte limit")
            data: bytes = body.read()
        finally:
            body.close()
        return data
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.get("Code") or str(status)
        if code == "NoSuchBucket":
            _fail(url, "not_found", f"bucket {bucket!r} does not exist")
        _fail_on_status(url, status, f"S3 answered {code}")
    except NoCredentialsError:
        _fail(url, "access_denied", "no AWS credentials: set access_key_id/secret_access_key on the integration")
    except BotoCoreError as exc:
        _fail(url, "unavailable", f"S3 request failed: {exc}")


@functools.lru_cache(maxsize=_CLIENT_CACHE_SIZE)
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


def _fetch_gcs(config: IntegrationConfig, url: str, bucket: str, key: str, max_bytes: int | None) -> bytes:
    from google.api_core import exceptions as gexc
    from google.auth.exceptions import GoogleAuthError
    from google.cloud.storage.retry import DEFAULT_RETRY
    from requests import RequestException

    try:
        blob = _cached_client(_gcs_client, config).bucket(bucket).blob(key)
        retry = DEFAULT_RETRY.with_timeout(_GCS_RETRY_TIMEOUT_S)
        timeout = (_CONNECT_TIMEOUT_S, _READ_TIMEOUT_S)
        if max_bytes is None:  # a whole-object read, so the library verifies the object's checksum
            data: bytes = blob.download_as_bytes(timeout=timeout, retry=retry)
        else:  # `end` is inclusive: one byte past the limit tells that the object exceeds it
            data = blob.download_as_bytes(start=0, end=max_bytes, timeout=timeout, retry=retry)
        return data
    except gexc.RequestRangeNotSatisfiable:
        return b""  # only an empty object cannot satisfy a range that starts at byte 0
    except gexc.GoogleAPICallError as exc:
        _fail_on_status(url, exc.code, f"GCS answered {exc.code}")
    except gexc.RetryError as exc:
        _fail(url, "unavailable", f"GCS request kept failing for {_GCS_RETRY_TIMEOUT_S:.0f}s ({exc.cause})")
    except GoogleAuthError as exc:
        _fail(url, "access_denied", f"no usable Google credentials ({type(exc).__name__})")
    except RequestException as exc:
        _fail(url, "unavailable", f"GCS request failed: {type(exc).__name__}")


@functools.lru_cache(maxsize=_CLIENT_CACHE_SIZE)
def _azure_client(config: IntegrationConfig) -> BlobServiceClient:
    from azure.storage.blob import BlobServiceClient, ExponentialRetry

    assert config.azure_connection_string is not None  # guaranteed by IntegrationConfig for kind == "azure"
    return BlobServiceClient.from_connection_string(
        config.azure_connection_string,
        api_version=_AZURE_API_VERSION,
        connection_timeout=_CONNECT_TIMEOUT_S,
        read_timeout=_READ_TIMEOUT_S,
        # The storage SDK's default backs off 18 s, 24 s, 42 s...: over a minute per unreachable object.
        # Its n-th retry waits initial_backoff + increment_base**n, so this waits about 2 s, then 4 s.
        retry_policy=ExponentialRetry(
            initial_backoff=0, increment_base=2, retry_total=_RETRY_ATTEMPTS - 1, random_jitter_range=1
        ),
    )


def _fetch_azure(config: IntegrationConfig, url: str, container: str, blob: str, max_bytes: int | None) -> bytes:
    from azure.core.exceptions import AzureError, HttpResponseError

    try:
        blob_client = _cached_client(_azure_client, config).get_blob_client(container, blob)
        if max_bytes is None:
            return blob_client.download_blob().readall()
        return blob_client.download_blob(offset=0, length=max_bytes + 1).readall()
    except HttpResponseError as exc:
        if exc.status_code == 416 and max_bytes is not None:
            return b""  # only an empty blob cannot satisfy a range that starts at byte 0
        # azure-storage-blob attaches the service's error code to the exception at runtime.
        code = getattr(exc, "error_code", None)
        if code == "ContainerNotFound":
            _fail(url, "not_found", f"container {container!r} does not exist")
        _fail_on_status(url, exc.status_code, f"Azure answered {code or exc.status_code}")
    except AzureError as exc:
        _fail(url, "unavailable", f"Azure request failed: {type(exc).__name__}")


def _fail_on_status(url: str, status: int | None, what: str) -> NoReturn:
    """Turn an HTTP status from any of the SDKs into the matching reason."""
    if status == 404:
        _fail(url, "not_found", f"no such object ({what})")
    if status in (401, 403):
        _fail(url, "access_denied", f"access denied ({what})")
    _fail(url, "unavailable", what)
