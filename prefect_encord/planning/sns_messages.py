"""What makes an Amazon SNS message trustworthy, checked without I/O: which fields it signs, which certificate
URLs may vouch for it, and how old it may be.

SNS signs every message it delivers to an HTTP(S) endpoint with the private key of a certificate it publishes
at ``SigningCertURL``; a receiver rebuilds the string SNS signed from the message's fields and checks the
signature with that certificate's public key (SHA1 for ``SignatureVersion`` 1, SHA256 for 2). See Amazon's
"Verifying the signatures of Amazon SNS messages"
(https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html).
The fetch and the check itself are :mod:`prefect_encord.events.sns_signatures`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

#: The only hosts a signing certificate (or a subscription URL) may come from: Amazon SNS's own endpoints.
SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
#: The fields SNS signs, in the order it signs them, by message type (``Subject`` only when present).
SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
#: The hash of each signature version.
SIGNATURE_HASHES = {"1": "sha1", "2": "sha256"}
#: How old a message may be: an older one is a replay (SNS retries a delivery for at most an hour by default).
MAX_AGE = timedelta(hours=1)


def is_sns_message(document: Any) -> bool:
    """Whether a delivery is an SNS envelope (which must then be signed), rather than a bare bucket event."""
    return isinstance(document, dict) and document.get("Type") in SIGNED_FIELDS and "TopicArn" in document


def is_sns_url(url: str) -> bool:
    """Whether ``url`` is an HTTPS URL of an Amazon SNS host, so that visiting it cannot be turned elsewhere."""
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(SNS_HOST.match(parts.hostname or "")) and parts.port in (None, 443)


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The bytes SNS signed: each signed field present, as ``name\\nvalue\\n``, in SNS's order."""
    fields = SIGNED_FIELDS[str(message["Type"])]
    return "".join(f"{name}\n{message[name]}\n" for name in fields if name in message).encode()


def unverifiable(message: Mapping[str, Any], now: datetime) -> str | None:
    """Why ``message`` cannot be trusted before its signature is even checked, or None: a signed field missing,
    an unknown signature version, a certificate not from SNS, or a time older than :data:`MAX_AGE` (a replay)."""
    required = [name for name in SIGNED_FIELDS[str(message["Type"])] if name != "Subject"]
    missing = [name for name in (*required, "Signature", "SignatureVersion", "SigningCertURL") if name not in message]
    if missing:
        return f"it is not signed as SNS signs: {', '.join(missing)} missing"
    if str(message["SignatureVersion"]) not in SIGNATURE_HASHES:
        return f"SignatureVersion {message['SignatureVersion']!r} is not one SNS uses"
    if not is_sns_url(str(message["SigningCertURL"])) or not str(message["SigningCertURL"]).endswith(".pem"):
        return f"its certificate URL {message['SigningCertURL']!r} is not Amazon SNS's"
    try:
        sent = datetime.fromisoformat(str(message["Timestamp"]).replace("Z", "+00:00"))
    except ValueError:
        return f"its Timestamp {message['Timestamp']!r} is not a time"
    if sent.tzinfo is None or now - sent > MAX_AGE:
        return f"it was sent at {message['Timestamp']}, more than {MAX_AGE} ago: a replay"
    return None
