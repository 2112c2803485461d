"""Endpoints and Azure connection strings, read as the SDKs read them, so URL matching agrees with where a
request goes."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
#: Connection strings are few; the bound only stops a churn of edited configs from keeping old ones.
_CACHE_SIZE = 32


MASK = "***"


def endpoint_origin(name: str, endpoint: str, *, allow_path: bool = False) -> tuple[str, int, str]:
    """``(host, port, path)`` of a configured endpoint; raises ValueError naming the setting if malformed."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        raise ValueError(f"{name} has a malformed host or port") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{name} must be an http(s)://host[:port] URL")
    path = parts.path.rstrip("/")
    if (path and not allow_path) or parts.query or parts.fragment:
        raise ValueError(f"{name} must be a bare http(s)://host[:port] URL with no path or query")
    return parts.hostname, port or DEFAULT_PORTS[parts.scheme], path


@functools.lru_cache(maxsize=_CACHE_SIZE)
def azure_settings(connection_string: str) -> tuple[str | None, str]:
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
    endpoint_origin("BlobEndpoint", endpoint, allow_path=True)
    return account, endpoint.rstrip("/")


def mask_connection_string(connection_string: str) -> str:
    secret_keys = {"ACCOUNTKEY", "SHAREDACCESSSIGNATURE"}
    masked = []
    for item in connection_string.split(";"):
        key, sep, _ = item.partition("=")
        masked.append(f"{key}={MASK}" if sep and key.strip().upper() in secret_keys else item)
    return ";".join(masked)
