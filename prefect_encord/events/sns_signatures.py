"""Check that an Amazon SNS message was signed by SNS, with the certificate SNS publishes, fetched once.

The rules (which fields are signed, which URLs may hold the certificate, how old a message may be) are pure and
live in :mod:`prefect_encord.planning.sns_messages`; this module fetches the certificate (only from an SNS host,
over HTTPS), keeps it in memory and in a directory on disk (``$PREFECT_HOME/encord/sns-certificates``, or
``PREFECT_INTEGRATIONS_ENCORD_SNS_CERTIFICATE_DIRECTORY``), so a restarted relay does not fetch it again, and
verifies the signature with its public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from prefect_encord.planning.sns_messages import SIGNATURE_HASHES, string_to_sign, unverifiable
from prefect_encord.state.durable_files import write_atomically
from prefect_encord.state.settings import local_directory

#: A signing certificate is a couple of kilobytes; a larger answer is not one.
_MAX_CERTIFICATE_BYTES = 64 * 1024
_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}


class SignatureRefused(Exception):
    """An SNS message that could not be shown to come from SNS; the message says why."""


class SnsVerifier:
    """Verifies SNS messages; certificates are fetched once per URL and kept (see the module)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()

    def verify(self, message: Mapping[str, Any], now: datetime | None = None) -> None:
        """Return if SNS signed ``message``; raise :class:`SignatureRefused`, saying why, if not."""
        problem = unverifiable(message, now or datetime.now(timezone.utc))
        if problem is not None:
            raise SignatureRefused(problem)
        try:
            signature = base64.b64decode(str(message["Signature"]), validate=True)
        except (binascii.Error, ValueError):
            raise SignatureRefused("its Signature is not base64") from None
        algorithm = _HASHES[SIGNATURE_HASHES[str(message["SignatureVersion"])]]()
        key = self._key(str(message["SigningCertURL"]))
        try:
            key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm)
        except InvalidSignature:
            raise SignatureRefused(
                "its signature does not match its content: it was altered, or not sent by SNS"
            ) from None

    def _key(self, url: str) -> rsa.RSAPublicKey:
        with self._lock:
            if url not in self._keys:
                self._keys[url] = _public_key(self._certificate(url), url)
            return self._keys[url]

    def _certificate(self, url: str) -> bytes:
        """The certificate at ``url``, from the directory if an earlier fetch kept it, else fetched and kept."""
        directory = self.directory or local_directory("sns_certificate")
        kept = directory / f"{hashlib.sha256(url.encode()).hexdigest()}.pem"
        if kept.exists():
            return kept.read_bytes()
        try:
            answer = httpx.get(url, timeout=10, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise SignatureRefused(f"its certificate {url} could not be fetched: {exc}") from None
        if not answer.is_success or len(answer.content) > _MAX_CERTIFICATE_BYTES:
            raise SignatureRefused(f"its certificate {url} could not be fetched: HTTP {answer.status_code}")
        write_atomically(kept, answer.text, "the SNS certificate cache")
        return answer.content


def _public_key(pem: bytes, url: str) -> rsa.RSAPublicKey:
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        raise SignatureRefused(f"{url} holds no certificate") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureRefused(f"the certificate {url} has no RSA key, which SNS signs with")
    return key
