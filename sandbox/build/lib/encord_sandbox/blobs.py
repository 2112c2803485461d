"""The blob store for locally uploaded files, and the signed URLs that guard it.

Encord hands the SDK a pre-signed URL and the SDK PUTs the bytes there with no Encord headers.
The sandbox plays the bucket too: a URL is ``/_blobs/<key>?expires=..&op=put&sig=..`` with an
HMAC over key, operation and expiry, so the sink accepts only unexpired URLs it signed itself.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from urllib.parse import urlencode

from encord_sandbox.errors import Forbidden, InvalidArgument

UPLOAD_URL_TTL_SECONDS = 3600
DOWNLOAD_URL_TTL_SECONDS = 3600


class BlobStore:
    """Files on disk under ``root``, named by item UUID; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path, secret: bytes) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._secret = secret

    @staticmethod
    def load_or_create_secret(path: Path) -> bytes:
        """The signing secret survives restarts so URLs handed out before a restart stay valid."""
        if not path.exists():
            path.write_bytes(secrets.token_bytes(32))
            path.chmod(0o600)
        return path.read_bytes()

    def _path(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise InvalidArgument(f"blob key {key!r} is not valid")
        return self.root / key

    def signed_url(self, base_url: str, key: str, op: str, ttl: int) -> str:
        expires = int(time.time()) + ttl
        query = urlencode({"op": op, "expires": expires, "sig": self._signature(key, op, expires)})
        return f"{base_url}/_blobs/{key}?{query}"

    def check(self, key: str, op: str, expires: str, signature: str) -> None:
        """Refuse a URL the sandbox did not sign for this key and operation, or one that expired."""
        try:
            expiry = int(expires)
        except ValueError as exc:
            raise Forbidden("signed URL has no valid expiry") from exc
        # Compared as bytes: compare_digest raises TypeError on non-ASCII str, which would be a 500.
        if not hmac.compare_digest(self._signature(key, op, expiry).encode(), signature.encode()):
            raise Forbidden("signed URL signature does not match")
        if expiry < time.time():
            raise Forbidden("signed URL has expired")

    def _signature(self, key: str, op: str, expires: int) -> str:
        return hmac.new(self._secret, f"{op}\n{key}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        temporary = path.with_name(f".{key}.{os.getpid()}.tmp")
        temporary.write_bytes(data)
        temporary.replace(path)

    def read(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.exists() else None
