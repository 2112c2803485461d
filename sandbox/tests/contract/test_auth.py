"""Request authentication, checked over real HTTP against the running sandbox.

Requests are signed with the SDK's own signer (``encord.http.v2.request_signer.sign_request`` on a
``requests.PreparedRequest``, exactly what ``ApiClient`` does) or with the §1b algorithm written out
by hand when a test needs to control ``created`` or ``keyid``, and then sent with httpx so the test
decides which bytes go on the wire. Every rejection must be a 401, never a 500 or a silent success.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from pathlib import Path

import httpx
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_ssh_private_key
from encord import EncordUserClient
from encord.exceptions import AuthenticationError
from encord.http.v2.request_signer import sign_request
from encord_sandbox.auth import AuthError, SignedRequest, authenticate
from encord_sandbox.organisation import models as organisation_models
from encord_sandbox.server import Sandbox, generate_key_pair

FOLDERS = "/v2/public/storage/folders"
COVERED = '("@method" "@request-target" "content-digest")'


@pytest.fixture(scope="module")
def admin_key(sandbox: Sandbox) -> Ed25519PrivateKey:
    key = load_ssh_private_key(sandbox.private_key_path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def _key_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _sdk_signed(
    key: Ed25519PrivateKey, method: str, url: str, *, params: dict | None = None, body: dict | None = None
) -> requests.PreparedRequest:
    """A request prepared and signed the way the SDK's ApiClient prepares and signs it."""
    prepared = requests.Request(method, url, params=params, json=body).prepare()
    return sign_request(prepared, _key_hex(key), key)


def _send(prepared: requests.PreparedRequest, *, url: str | None = None, body: bytes | None = None) -> httpx.Response:
    """Send a prepared request with httpx, optionally swapping the URL or body after signing."""
    content = prepared.body if body is None else body
    if isinstance(content, str):
        content = content.encode()
    headers = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    return httpx.request(prepared.method or "GET", url or prepared.url or "", content=content or b"", headers=headers)


def _manual_headers(
    key: Ed25519PrivateKey, method: str, target: str, *, body: bytes = b"", created: int | str, keyid: str
) -> dict[str, str]:
    """The SDK's v2 request signature (``encord.http.v2.request_signer``) written out, so that the test
    chooses ``created`` and ``keyid``."""
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    params = f'{COVERED};created={created};keyid="{keyid}";alg="ed25519"'
    base = (
        f'"@method": {method}\n"@request-target": {target}\n"content-digest": {digest}\n"@signature-params": {params}'
    )
    signature = base64.b64encode(key.sign(base.encode())).decode()
    return {
        "Content-Digest": digest,
        "Signature-Input": f"encord-sig={params}",
        "Signature": f"encord-sig=:{signature}:",
    }


def _assert_401(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert reason in response.json()["message"]


def test_sdk_signed_get_succeeds(sandbox: Sandbox, admin_key: Ed25519PrivateKey) -> None:
    response = _send(_sdk_signed(admin_key, "GET", sandbox.domain + FOLDERS, params={"pageSize": 5}))
    assert response.status_code == 200, response.text
    page = response.json()
    assert isinstance(page["results"], list)
    assert "nextPageToken" in page


def test_sdk_signed_post_with_body_succeeds_and_acts_as_the_key_owner(
    sandbox: Sandbox, admin_key: Ed25519PrivateKey, client: EncordUserClient
) -> None:
    name = f"auth-post-{uuid.uuid4().hex[:8]}"
    response = _send(_sdk_signed(admin_key, "POST", sandbox.domain + FOLDERS, body={"name": name}))
    assert response.status_code == 200, response.text
    created = client.get_storage_folder(response.json()["uuid"])
    assert created.name == name


def test_hand_written_signature_with_current_time_succeeds(sandbox: Sandbox, admin_key: Ed25519PrivateKey) -> None:
    """Proves the hand-written signer below is right, so its rejections are about the changed field only."""
    target = FOLDERS + "?pageSize=1"
    headers = _manual_headers(admin_key, "GET", target, created=int(time.time()), keyid=_key_hex(admin_key))
    assert httpx.get(sandbox.domain + target, headers=headers).status_code == 200


def test_unsigned_request_is_401(sandbox: Sandbox) -> None:
    _assert_401(httpx.get(sandbox.domain + FOLDERS), "not signed")


def test_tampered_body_is_401_and_writes_nothing(
    sandbox: Sandbox, admin_key: Ed25519PrivateKey, client: EncordUserClient
) -> None:
    signed = _sdk_signed(admin_key, "POST", sandbox.domain + FOLDERS, body={"name": "original"})
    forged_name = f"forged-{uuid.uuid4().hex[:8]}"
    forged = json.dumps({"name": forged_name}).encode()
    _assert_401(_send(signed, body=forged), "Content-Digest")

    # Recomputing the digest for the forged body does not help: the signature covers the digest.
    signed.headers["Content-Digest"] = "sha-256=:" + base64.b64encode(hashlib.sha256(forged).digest()).decode() + ":"
    _assert_401(_send(signed, body=forged), "does not verify")
    assert list(client.find_storage_folders(search=forged_name)) == []


def test_tampered_path_is_401(sandbox: Sandbox, admin_key: Ed25519PrivateKey, client: EncordUserClient) -> None:
    mine = client.create_storage_folder(f"auth-path-{uuid.uuid4().hex[:8]}")
    signed = _sdk_signed(admin_key, "GET", f"{sandbox.domain}{FOLDERS}/{mine.uuid}")
    assert _send(signed).status_code == 200
    _assert_401(_send(signed, url=f"{sandbox.domain}{FOLDERS}/{uuid.uuid4()}"), "does not verify")


def test_tampered_query_is_401(sandbox: Sandbox, admin_key: Ed25519PrivateKey) -> None:
    signed = _sdk_signed(admin_key, "GET", sandbox.domain + FOLDERS, params={"search": "cats", "pageSize": 10})
    assert _send(signed).status_code == 200
    _assert_401(_send(signed, url=f"{sandbox.domain}{FOLDERS}?search=dogs&pageSize=10"), "does not verify")


def test_method_swap_is_401(sandbox: Sandbox, admin_key: Ed25519PrivateKey, client: EncordUserClient) -> None:
    mine = client.create_storage_folder(f"auth-method-{uuid.uuid4().hex[:8]}")
    signed = _sdk_signed(admin_key, "GET", f"{sandbox.domain}{FOLDERS}/{mine.uuid}")
    signed.method = "PATCH"
    _assert_401(_send(signed), "does not verify")


@pytest.mark.parametrize("skew", [-3600, 3600])
def test_stale_or_future_created_is_401(sandbox: Sandbox, admin_key: Ed25519PrivateKey, skew: int) -> None:
    target = FOLDERS + "?pageSize=1"
    headers = _manual_headers(admin_key, "GET", target, created=int(time.time()) + skew, keyid=_key_hex(admin_key))
    _assert_401(httpx.get(sandbox.domain + target, headers=headers), "stale")


def test_malformed_created_is_401_not_500(sandbox: Sandbox, admin_key: Ed25519PrivateKey) -> None:
    headers = _manual_headers(admin_key, "GET", FOLDERS, created='"soon"', keyid=_key_hex(admin_key))
    _assert_401(httpx.get(sandbox.domain + FOLDERS, headers=headers), "created")


def test_signature_header_that_is_not_base64_is_401(sandbox: Sandbox, admin_key: Ed25519PrivateKey) -> None:
    signed = _sdk_signed(admin_key, "GET", sandbox.domain + FOLDERS)
    signed.headers["Signature"] = "encord-sig=:not base64!:"
    _assert_401(_send(signed), "base64")


def test_unknown_key_is_401(sandbox: Sandbox) -> None:
    stranger = Ed25519PrivateKey.generate()
    _assert_401(_send(_sdk_signed(stranger, "GET", sandbox.domain + FOLDERS)), "unknown public key")


def test_registered_keyid_signed_by_another_key_is_401(sandbox: Sandbox, admin_key: Ed25519PrivateKey) -> None:
    impostor = Ed25519PrivateKey.generate()
    headers = _manual_headers(impostor, "GET", FOLDERS, created=int(time.time()), keyid=_key_hex(admin_key))
    _assert_401(httpx.get(sandbox.domain + FOLDERS, headers=headers), "does not verify")


def test_v1_authorization_is_refused_on_v2_routes(sandbox: Sandbox, admin_key: Ed25519PrivateKey) -> None:
    """v1 signs only sha256(body): on a v2 GET, whose body is ignored, a captured header would replay forever."""
    body = b'{"query_type": "folder", "query_method": "GET", "values": {"uid": null, "payload": null}}'
    valid = f"{_key_hex(admin_key)}:{admin_key.sign(hashlib.sha256(body).digest()).hex()}"
    wrong = f"{_key_hex(admin_key)}:{admin_key.sign(hashlib.sha256(b'other').digest()).hex()}"
    for authorization in (valid, wrong):
        response = httpx.request(
            "GET", sandbox.domain + FOLDERS, content=body, headers={"Authorization": authorization}
        )
        _assert_401(response, "v2 routes need")


def test_v1_signature_rules(sandbox: Sandbox, admin_key: Ed25519PrivateKey) -> None:
    """Where v1 is allowed (the /public RPC endpoints) the Ed25519 signature over sha256(body) must verify."""
    body = b'{"query_type": "dataset", "query_method": "GET", "values": {"uid": null, "payload": null}}'
    key_hex = _key_hex(admin_key)

    def attempt(signature: bytes, sent_body: bytes = body) -> str:
        request = SignedRequest("POST", "/public/user", {"Authorization": f"{key_hex}:{signature.hex()}"}, sent_body)

        def user_for_key(key: str) -> str | None:
            return organisation_models.user_for_key(sandbox.backend.store, key)

        return authenticate(request, user_for_key, time.time(), allow_v1=True)

    assert attempt(admin_key.sign(hashlib.sha256(body).digest())) == sandbox.admin_user
    with pytest.raises(AuthError, match="does not verify"):
        attempt(admin_key.sign(hashlib.sha256(body).digest()), sent_body=body + b" ")
    with pytest.raises(AuthError, match="does not verify"):
        attempt(Ed25519PrivateKey.generate().sign(hashlib.sha256(body).digest()))


def test_sdk_client_with_unregistered_key_gets_authentication_error(sandbox: Sandbox, tmp_path: Path) -> None:
    key_path = tmp_path / "unregistered_ed25519"
    generate_key_pair(key_path)
    stranger = EncordUserClient.create_with_ssh_private_key(ssh_private_key_path=key_path, domain=sandbox.domain)
    with pytest.raises(AuthenticationError, match="unknown public key"):
        list(stranger.list_storage_folders())


def test_raw_target_with_plus_and_percent_escapes_verifies(
    sandbox: Sandbox, admin_key: Ed25519PrivateKey, client: EncordUserClient
) -> None:
    """The signature is over the raw target: `+` and `%xx` must reach the verifier undecoded."""
    token = uuid.uuid4().hex[:8]
    folder = client.create_storage_folder(f"{token} a b+c z")

    # The SDK's path: requests encodes "a b+c" as "a+b%2Bc"; the server must both verify and decode it.
    found = list(client.list_storage_folders(search=f"{token} a b+c"))
    assert [f.uuid for f in found] == [folder.uuid]

    # A hand-written target using %20 for the space, as other clients write it.
    target = f"{FOLDERS}?search={token}%20a%20b%2Bc&pageSize=10"
    headers = _manual_headers(admin_key, "GET", target, created=int(time.time()), keyid=_key_hex(admin_key))
    response = httpx.get(sandbox.domain + target, headers=headers)
    assert response.status_code == 200, response.text
    assert [f["uuid"] for f in response.json()["results"]] == [str(folder.uuid)]

    # The same target decoded before signing ("+" instead of "%2B") is a different target: 401.
    decoded = f"{FOLDERS}?search={token}+a+b+c&pageSize=10"
    headers = _manual_headers(admin_key, "GET", decoded, created=int(time.time()), keyid=_key_hex(admin_key))
    _assert_401(httpx.get(sandbox.domain + target, headers=headers), "does not verify")
