"""Messages signed as Amazon SNS signs them, with a test certificate the relay finds in its certificate directory
(the one it keeps fetched certificates in), so no test reaches Amazon: SNS itself cannot run here."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import uuid
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from prefect_encord.planning.sns_messages import string_to_sign

CERTIFICATE_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-prefect-encord-tests.pem"


@functools.cache
def _key_and_certificate() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com (test)")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256())
    )  # fmt: skip
    return key, certificate.public_bytes(serialization.Encoding.PEM)


def trust_test_certificate(directory: Path, url: str = CERTIFICATE_URL) -> None:
    """Put the test certificate where the relay keeps the certificate fetched from ``url``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{hashlib.sha256(url.encode()).hexdigest()}.pem").write_bytes(_key_and_certificate()[1])


def signed(message: dict[str, Any], version: str = "2", sent: dt.datetime | None = None) -> dict[str, Any]:
    """``message`` (an SNS Notification or SubscriptionConfirmation) with the fields SNS adds and its signature."""
    stamp = (sent or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    whole = {"MessageId": str(uuid.uuid4()), "Timestamp": stamp, **message, "SignatureVersion": version,
             "SigningCertURL": CERTIFICATE_URL}  # fmt: skip
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = _key_and_certificate()[0].sign(string_to_sign(whole), padding.PKCS1v15(), algorithm)
    return {**whole, "Signature": base64.b64encode(signature).decode()}
