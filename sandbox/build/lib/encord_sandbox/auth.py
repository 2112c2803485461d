"""Request authentication: the two Ed25519 signing schemes the official SDK uses.

Pure functions over the raw request (method, raw target, headers, body) so the rules can be read
and tested without a server. The v2 scheme (RFC 9421 draft) covers method, raw target and a body
digest with a ``created`` timestamp; the v1 scheme signs ``sha256(body)`` only, so it is replayable
and leaves ``ResourceID`` unsigned: every v1 call must therefore be authorised against the
resource it names (done by the routes, not here).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_ssh_public_key

# urllib3 re-sends the *same* signed request after 0, 3 and 6 s (or Retry-After); allow generous
# skew so retries and slightly-off clocks pass while week-old captures do not.
SIGNATURE_WINDOW_SECONDS = 300

_COVERED = '("@method" "@request-target" "content-digest")'
_PARAM = re.compile(r';(created|keyid|alg)=("[^"]*"|\d+)')


class AuthError(Exception):
    """The request is not signed by a registered key; always answered with 401."""


@dataclass(frozen=True)
class SignedRequest:
    """What auth needs from an HTTP request. ``target`` is the *raw* path plus query string."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes


KeyLookup = Callable[[str], "str | None"]
"""Maps a raw public-key hex to the id of the user who registered it, or None."""


def public_key_hex(openssh_public_key: str) -> str:
    """The raw Ed25519 public key hex the SDK sends as its key id, from an OpenSSH public key line."""
    key = load_ssh_public_key(openssh_public_key.strip().encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("only Ed25519 keys are supported")
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def authenticate(request: SignedRequest, lookup: KeyLookup, now: float, allow_v1: bool = True) -> str:
    """Return the user id behind a signed request, or raise :class:`AuthError` saying why.

    ``allow_v1=False`` (the v2 routes) refuses the v1 scheme: it signs only the body, so a captured
    v1 header would otherwise replay forever onto any v2 GET, whose body nobody reads.
    """
    headers = {k.lower(): v for k, v in request.headers.items()}
    if "signature-input" in headers:
        return _verify_v2(request, headers, lookup, now)
    authorization = headers.get("authorization", "")
    if ":" in authorization and not authorization.lower().startswith("bearer "):
        if not allow_v1:
            raise AuthError("v2 routes need an HTTP message signature (Signature-Input), not a v1 Authorization")
        return _verify_v1(request.body, authorization, lookup)
    raise AuthError("request is not signed (no Signature-Input and no key:signature Authorization)")


def _verify_v2(request: SignedRequest, headers: Mapping[str, str], lookup: KeyLookup, now: float) -> str:
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(request.body).digest()).decode() + ":"
    if headers.get("content-digest") != digest:
        raise AuthError("Content-Digest does not match the body")
    signature_input = headers["signature-input"]
    if not signature_input.startswith("encord-sig="):
        raise AuthError("Signature-Input must use the label encord-sig")
    params = signature_input[len("encord-sig=") :]
    if not params.startswith(_COVERED):
        raise AuthError("signature must cover exactly @method, @request-target and content-digest")
    values = {name: value.strip('"') for name, value in _PARAM.findall(params[len(_COVERED) :])}
    if values.get("alg") != "ed25519" or "keyid" not in values or not values.get("created", "").isdecimal():
        raise AuthError("signature parameters must give created (integer seconds), keyid and alg=ed25519")
    skew = int(now) - int(values["created"])
    if abs(skew) > SIGNATURE_WINDOW_SECONDS:
        raise AuthError(
            f"signature is stale: 'created' is {values['created']}, {abs(skew)} s "
            f"{'behind' if skew > 0 else 'ahead of'} the server's clock; the accepted window is "
            f"±{SIGNATURE_WINDOW_SECONDS} s (is the client's clock right?)"
        )
    user_id = _known_user(values["keyid"], lookup)
    signature_header = headers.get("signature", "")
    if not (signature_header.startswith("encord-sig=:") and signature_header.endswith(":")):
        raise AuthError("Signature header must be encord-sig=:<base64>:")
    base = (
        f'"@method": {request.method.upper()}\n'
        f'"@request-target": {request.target}\n'
        f'"content-digest": {digest}\n'
        f'"@signature-params": {params}'
    )
    try:
        signature = base64.b64decode(signature_header[len("encord-sig=:") : -1], validate=True)
    except binascii.Error as exc:
        raise AuthError("signature is not valid base64") from exc
    _verify(values["keyid"], signature, base.encode())
    return user_id


def _verify_v1(body: bytes, authorization: str, lookup: KeyLookup) -> str:
    key_hex, signature_hex = authorization.split(":", 1)
    user_id = _known_user(key_hex, lookup)
    try:
        signature = bytes.fromhex(signature_hex)
    except ValueError as exc:
        raise AuthError("signature is not hex") from exc
    _verify(key_hex, signature, hashlib.sha256(body).digest())
    return user_id


def _known_user(key_hex: str, lookup: KeyLookup) -> str:
    user_id = lookup(key_hex.lower())
    if user_id is None:
        # A public key is no secret; naming it tells the user which key to register. Capped: it is caller input.
        raise AuthError(f"unknown public key {key_hex[:64]!r}: no user has registered it")
    return user_id


def _verify(key_hex: str, signature: bytes, message: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(signature, message)
    except (InvalidSignature, ValueError) as exc:
        raise AuthError("signature does not verify: the request was altered or signed by another key") from exc
