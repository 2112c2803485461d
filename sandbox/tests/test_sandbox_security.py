"""Sandbox security, route by route: who may call, and whose data a call may touch.

The FastAPI app's routes and the v1 dispatcher's ``HANDLERS`` are enumerated, and every route must have a
case here (a new route without one fails :func:`test_every_route_has_a_security_case`):

* **Authentication, every route.** Unsigned, signed by an unknown key, signed an hour ago (a replay of a
  captured request after the window), tampered after signing (path, query or body), and, on v2 routes, a
  valid v1 ``Authorization`` (which signs only the body and would replay forever): all 401, nothing written.
  ``tests/contract/test_auth.py`` proves each rule once on one route; this extends them to all.
* **A second user, every route.** The intruder, properly signed, aims every route at the admin's folders,
  items, placeholders, groups, jobs, integration, datasets, projects, ontology and label rows, directly or
  through their own folder: refused (403/404), listings show nothing of the admin's, no response carries
  the admin's names, and the admin's state is unchanged. Routes that create (a dataset, an ontology, a job)
  may only add the intruder's own rows. For the v1 handlers, role checks on every handler are in
  ``tests/contract/test_rpc_authorisation.py``; the v1 endpoints here get representative attempts.
* **Deletion** through either deletion route by the intruder is refused and deletes nothing.
* **The upload sink** (``/_blobs``) accepts only unexpired URLs this sandbox signed for that key and method
  (most of it in ``tests/contract/test_folders_items.py``; here: another sandbox's signature, a signed key that
  climbs out of the blob store, and a reserved slot hijacked through another folder).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_ssh_private_key
from encord import EncordUserClient
from encord.configs import SshConfig
from encord.http.v2.request_signer import sign_request
from encord.orm.dataset import DatasetType
from encord.orm.storage import DataGroupGrid, StorageItemType
from encord_sandbox import rpc, samples
from encord_sandbox.app import create_app
from encord_sandbox.blobs import BlobStore
from encord_sandbox.server import Sandbox
from encord_sandbox.snapshots import State, differences, settle, snapshot, unchanged
from fastapi import FastAPI

V2 = "/v2/public"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STORAGE = f"{V2}/storage"
#: Served without a signature, and holding no user data.
PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}
#: The blob sink: authorised by the signed URL itself (see the sink tests below), not by a request signature.
BLOB_ROUTES = {("PUT", "/_blobs/{key}"), ("GET", "/_blobs/{key}")}


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """``(method, path template)`` of every route the app serves, included routers' routes too."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        contexts = route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]
        for served in contexts:
            found |= {(method, served.path) for method in (getattr(served, "methods", None) or ()) if method != "HEAD"}
    return found


# --- keys and raw signed requests --------------------------------------------------------------------------


def _key(path: Path) -> Ed25519PrivateKey:
    key = load_ssh_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def _key_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def _body_bytes(body: Any) -> bytes:
    return b"" if body is None else json.dumps(body).encode()


def _v2_signed(key: Ed25519PrivateKey, method: str, url: str, body: Any = None) -> tuple[dict[str, str], bytes]:
    """Headers and body exactly as the SDK's ApiClient signs them."""
    prepared = requests.Request(method, url, data=_body_bytes(body) or None).prepare()
    prepared = sign_request(prepared, _key_hex(key), key)
    headers = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    return headers, _body_bytes(body)


def _v2_stale(key: Ed25519PrivateKey, method: str, target: str, body: bytes, age: int) -> dict[str, str]:
    """The SDK's v2 request signature by hand, ``created`` ``age`` seconds ago (a captured request replayed)."""
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    params = (
        f'("@method" "@request-target" "content-digest");created={int(time.time()) - age};'
        f'keyid="{_key_hex(key)}";alg="ed25519"'
    )
    base = (
        f'"@method": {method}\n"@request-target": {target}\n"content-digest": {digest}\n"@signature-params": {params}'
    )
    signature = base64.b64encode(key.sign(base.encode())).decode()
    return {
        "Content-Digest": digest,
        "Signature-Input": f"encord-sig={params}",
        "Signature": f"encord-sig=:{signature}:",
    }


def _v1_headers(
    domain: str, key: Ed25519PrivateKey, body: bytes, resource: tuple[str | None, str | None]
) -> dict[str, str]:
    resource_type, resource_id = resource
    return dict(SshConfig(key, domain=domain).define_headers(resource_id, resource_type, body.decode()))


def _send(method: str, url: str, headers: dict[str, str] | None = None, body: bytes = b"") -> httpx.Response:
    return httpx.request(method, url, headers=headers or {}, content=body, timeout=30)


def _refusal(response: httpx.Response) -> tuple[int, str]:
    """Status and message of an answer, the v1 envelope (HTTP 200, status inside) unwrapped."""
    try:
        answer = response.json()
    except json.JSONDecodeError:
        return response.status_code, response.text
    if isinstance(answer, dict) and isinstance(answer.get("status"), int) and "response" in answer:
        return int(answer["status"]), str(answer.get("payload"))
    return response.status_code, str(answer.get("message") if isinstance(answer, dict) else answer)


# --- the admin's estate, and the intruder's own corner ----------------------------------------------------------


@dataclass
class Estate:
    """Everything the admin owns, named with a token no intruder's answer may contain."""

    token: str
    folder: str
    subfolder: str
    empty_folder: str
    item: str
    other_item: str
    group: str
    job: str
    placeholder: str
    placeholder_url: str
    integration: str
    dataset: str
    project: str
    ontology: str
    label_hash: str
    data_hash: str
    theirs: dict[str, str] = field(default_factory=dict)

    def ids(self) -> set[str]:
        owned = {k: v for k, v in vars(self).items() if k not in ("token", "placeholder_url", "theirs")}
        return {str(v) for v in owned.values()}


@pytest.fixture(scope="module")
def estate(hardened: Sandbox, intruder: EncordUserClient, tmp_path_factory: pytest.TempPathFactory) -> Estate:
    client = hardened.credentials().get_client()
    token = f"crown-jewels-{uuid.uuid4().hex[:10]}"
    media = tmp_path_factory.mktemp("estate")
    (media / "a.png").write_bytes(samples.png(color=(200, 10, 10)))
    (media / "b.png").write_bytes(samples.png(color=(10, 200, 10)))
    folder = client.create_storage_folder(token, description=f"{token} description")
    subfolder = client.create_storage_folder(f"{token}-sub", parent_folder=folder.uuid)
    empty = client.create_storage_folder(f"{token}-empty")
    item = folder.upload_image(media / "a.png", title=f"{token}-a.png")
    other = folder.upload_image(media / "b.png", title=f"{token}-b.png")
    (group,) = folder.create_data_groups([DataGroupGrid(name=f"{token}-group", layout_contents=[item, other])])
    job = hardened.backend.store.query("SELECT uuid FROM jobs WHERE folder = ? LIMIT 1", (str(folder.uuid),))[0]["uuid"]
    (slot,) = folder._get_upload_signed_urls(item_type=StorageItemType.IMAGE, count=1)
    integration = hardened.add_integration(f"{token}-integration", "local", root=str(media))
    dataset = client.create_dataset(f"{token} dataset", DatasetType.CORD_STORAGE, create_backing_folder=False)
    client.get_dataset(dataset.dataset_hash).link_items([item])
    project = client.get_project(client.create_project(f"{token} project", [dataset.dataset_hash]))
    (row,) = project.list_label_rows_v2()
    row.initialise_labels()
    row.save()
    assert row.label_hash is not None

    own = intruder.create_storage_folder(f"intruder-{uuid.uuid4().hex[:8]}")
    own_item = own.upload_image(media / "b.png", title="intruder.png")
    own_dataset = intruder.create_dataset("intruder dataset", DatasetType.CORD_STORAGE, create_backing_folder=False)
    settle(hardened)
    return Estate(
        token=token, folder=str(folder.uuid), subfolder=str(subfolder.uuid), empty_folder=str(empty.uuid),
        item=str(item), other_item=str(other), group=str(group), job=str(job), placeholder=str(slot.item_uuid),
        placeholder_url=slot.signed_url, integration=integration, dataset=dataset.dataset_hash,
        project=project.project_hash, ontology=project.ontology_hash, label_hash=row.label_hash,
        data_hash=row.data_hash,
        theirs={"folder": str(own.uuid), "item": str(own_item), "dataset": own_dataset.dataset_hash},
    )  # fmt: skip


# --- what the intruder tries, route by route --------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One request by the intruder. ``refused``: the statuses that count as refusal; None means the call is
    served (a listing, or a create of the intruder's own) and must only show or add the intruder's own."""

    method: str
    path: str
    body: Any = None
    refused: frozenset[int] | None = frozenset({403, 404})
    v1: tuple[str | None, str | None] | None = None  # (ResourceType, ResourceID) of a v1 call


def _rpc(query_type: str, method: str, resource: tuple[str | None, str | None], uid: Any, payload: Any) -> Attempt:
    body = {"query_type": query_type, "query_method": method, "values": {"uid": uid, "payload": payload}}
    path = "/public/user" if resource[0] is None else "/public"
    return Attempt("POST", path, body, frozenset({403, 404}), v1=resource)


def _group_of(items: list[str]) -> list[dict[str, Any]]:
    return [{"name": "stolen", "layoutType": "default-grid", "layoutContents": items}]


def _job(placeholders: list[str], integration: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "dataItems": {"images": [{"objectUrl": "x.png", "placeholderItemUuid": p} for p in placeholders]}
    }
    if integration:
        body = {"externalFiles": {"images": [{"objectUrl": "file:///etc/hostname"}]}, "integrationHash": integration}
    return body


CASES: dict[tuple[str, str], Callable[[Estate], list[Attempt]]] = {
    ("POST", f"{STORAGE}/folders"): lambda e: [
        Attempt("POST", f"{STORAGE}/folders", {"name": "squatter", "parent": e.folder}),
    ],
    ("GET", f"{STORAGE}/folders"): lambda e: [
        Attempt("GET", f"{STORAGE}/folders?isRecursive=True", refused=None),
        Attempt("GET", f"{STORAGE}/folders?search={e.token}", refused=None),
    ],
    ("GET", f"{STORAGE}/search/folders"): lambda e: [
        Attempt("GET", f"{STORAGE}/search/folders?search={e.token}", refused=None),
    ],
    ("PATCH", f"{STORAGE}/folders/patch-bulk"): lambda e: [
        Attempt("PATCH", f"{STORAGE}/folders/patch-bulk", {"folderPatches": {e.folder: {"name": "pwned"}}}),
        Attempt(
            "PATCH",
            f"{STORAGE}/folders/patch-bulk",
            {"folderPatches": {e.theirs["folder"]: {"name": "mine"}, e.subfolder: {"name": "pwned"}}},
        ),  # fmt: skip
    ],
    ("GET", f"{STORAGE}/folders/{{folder_uuid}}"): lambda e: [Attempt("GET", f"{STORAGE}/folders/{e.folder}")],
    ("PATCH", f"{STORAGE}/folders/{{folder_uuid}}"): lambda e: [
        Attempt("PATCH", f"{STORAGE}/folders/{e.folder}", {"name": "pwned"}),
    ],
    ("DELETE", f"{STORAGE}/folders/{{folder_uuid}}"): lambda e: [
        Attempt("DELETE", f"{STORAGE}/folders/{e.empty_folder}"),
        Attempt("DELETE", f"{STORAGE}/folders/{e.folder}"),
    ],
    ("GET", f"{STORAGE}/folders/{{folder_uuid}}/folders"): lambda e: [
        Attempt("GET", f"{STORAGE}/folders/{e.folder}/folders?isRecursive=True"),
    ],
    ("GET", f"{STORAGE}/folders/{{folder_uuid}}/items"): lambda e: [
        Attempt("GET", f"{STORAGE}/folders/{e.folder}/items?signUrls=True"),
        Attempt("GET", f"{STORAGE}/folders/{e.theirs['folder']}/items?isRecursive=True&search={e.token}", refused=None),
    ],
    ("GET", f"{STORAGE}/items/{{item_uuid}}"): lambda e: [
        Attempt("GET", f"{STORAGE}/items/{e.item}?signUrl=True"),
        Attempt("GET", f"{STORAGE}/items/{e.group}"),
        Attempt("GET", f"{STORAGE}/items/{e.placeholder}"),
    ],
    ("POST", f"{STORAGE}/items/get-bulk"): lambda e: [
        Attempt("POST", f"{STORAGE}/items/get-bulk", {"itemUuids": [e.item], "signUrls": True}),
        Attempt("POST", f"{STORAGE}/items/get-bulk", {"itemUuids": [e.theirs["item"], e.other_item]}),
    ],
    ("PATCH", f"{STORAGE}/folders/{{folder_uuid}}/items/{{item_uuid}}"): lambda e: [
        Attempt("PATCH", f"{STORAGE}/folders/{e.folder}/items/{e.item}", {"clientMetadata": {"owner": "intruder"}}),
        Attempt("PATCH", f"{STORAGE}/folders/{e.theirs['folder']}/items/{e.item}", {"name": "pwned"}),
    ],
    ("PATCH", f"{STORAGE}/items/patch-bulk"): lambda e: [
        Attempt("PATCH", f"{STORAGE}/items/patch-bulk", {"itemPatches": {e.item: {"name": "pwned"}}}),
        Attempt(
            "PATCH",
            f"{STORAGE}/items/patch-bulk",
            {"itemPatches": {e.theirs["item"]: {"name": "fine"}, e.group: {"clientMetadata": {"x": 1}}}},
        ),  # fmt: skip
    ],
    ("GET", f"{STORAGE}/folders/{{folder_uuid}}/items/{{item_uuid}}/child-items"): lambda e: [
        Attempt("GET", f"{STORAGE}/folders/{e.folder}/items/{e.group}/child-items?signUrls=True"),
        Attempt("GET", f"{STORAGE}/folders/{e.theirs['folder']}/items/{e.group}/child-items"),
    ],
    ("GET", f"{STORAGE}/folders/{{folder_uuid}}/items/{{item_uuid}}/summary"): lambda e: [
        Attempt("GET", f"{STORAGE}/folders/{e.folder}/items/{e.item}/summary?includeGroupLayout=True"),
        Attempt("GET", f"{STORAGE}/folders/{e.theirs['folder']}/items/{e.item}/summary"),
    ],
    ("POST", f"{STORAGE}/folders/{{folder_uuid}}/upload-signed-urls"): lambda e: [
        Attempt("POST", f"{STORAGE}/folders/{e.folder}/upload-signed-urls", {"itemType": "image", "count": 1}),
    ],
    ("POST", f"{STORAGE}/folders/{{folder_uuid}}/data-upload-jobs"): lambda e: [
        Attempt("POST", f"{STORAGE}/folders/{e.folder}/data-upload-jobs", _job([e.placeholder])),
        Attempt("POST", f"{STORAGE}/folders/{e.theirs['folder']}/data-upload-jobs", _job([], e.integration)),
    ],
    ("GET", f"{STORAGE}/folders/{{folder_uuid}}/data-upload-jobs/{{job_uuid}}"): lambda e: [
        Attempt("GET", f"{STORAGE}/folders/{e.folder}/data-upload-jobs/{e.job}?timeoutSeconds=0"),
        Attempt("GET", f"{STORAGE}/folders/{e.theirs['folder']}/data-upload-jobs/{e.job}?timeoutSeconds=0"),
    ],
    ("POST", f"{STORAGE}/folders/{{folder_uuid}}/data-upload-jobs/{{job_uuid}}/cancel"): lambda e: [
        Attempt("POST", f"{STORAGE}/folders/{e.folder}/data-upload-jobs/{e.job}/cancel"),
        Attempt("POST", f"{STORAGE}/folders/{e.theirs['folder']}/data-upload-jobs/{e.job}/cancel"),
    ],
    ("POST", f"{STORAGE}/folders/{{folder_uuid}}/create-group-items"): lambda e: [
        Attempt("POST", f"{STORAGE}/folders/{e.folder}/create-group-items", _group_of([e.theirs["item"]])),
        Attempt(
            "POST", f"{STORAGE}/folders/{e.theirs['folder']}/create-group-items", _group_of([e.item, e.other_item])
        ),
    ],
    ("POST", f"{STORAGE}/folders/{{folder_uuid}}/items/delete"): lambda e: [
        Attempt("POST", f"{STORAGE}/folders/{e.folder}/items/delete", {"childUuids": [e.group]}),
        Attempt("POST", f"{STORAGE}/folders/{e.theirs['folder']}/items/delete", {"childUuids": [e.group, e.item]}),
    ],
    ("POST", f"{STORAGE}/folders/{{folder_uuid}}/items/move"): lambda e: [
        Attempt(
            "POST",
            f"{STORAGE}/folders/{e.folder}/items/move",
            {"itemUuids": [e.item], "newParentUuid": e.theirs["folder"]},
        ),
        Attempt(
            "POST",
            f"{STORAGE}/folders/{e.theirs['folder']}/items/move",
            {"itemUuids": [e.theirs["item"]], "newParentUuid": e.folder},
        ),
    ],  # fmt: skip
    ("POST", f"{STORAGE}/folders/{{folder_uuid}}/cloud-synced-folder-syncs"): lambda e: [
        Attempt("POST", f"{STORAGE}/folders/{e.folder}/cloud-synced-folder-syncs"),
    ],
    ("GET", f"{STORAGE}/folders/{{folder_uuid}}/cloud-linked-folder-syncs/{{sync_uuid}}/long-polling"): lambda e: [
        Attempt("GET", f"{STORAGE}/folders/{e.folder}/cloud-linked-folder-syncs/{e.item}/long-polling"),
    ],
    ("GET", f"{STORAGE}/folders/{{folder_uuid}}/folder-config"): lambda e: [
        Attempt("GET", f"{STORAGE}/folders/{e.folder}/folder-config"),
    ],
    ("POST", f"{STORAGE}/folders/{{folder_uuid}}/folder-config"): lambda e: [
        Attempt("POST", f"{STORAGE}/folders/{e.folder}/folder-config", {"metadataIngestion": None}),
    ],
    ("GET", f"{V2}/cloud-integrations"): lambda e: [
        Attempt("GET", f"{V2}/cloud-integrations?filterIntegrationUuids={e.integration}", refused=None),
    ],
    ("POST", f"{V2}/datasets"): lambda e: [
        Attempt("POST", f"{V2}/datasets", {"title": f"{e.token} dataset", "createBackingFolder": True}, refused=None),
    ],
    ("GET", f"{V2}/datasets/list"): lambda e: [
        Attempt("GET", f"{V2}/datasets/list?titleEq={e.token}%20dataset", refused=None),
        Attempt("GET", f"{V2}/datasets/list?includeOrgAccess=True", refused=None),
    ],
    ("GET", f"{V2}/projects"): lambda e: [Attempt("GET", f"{V2}/projects?titleLike=%25{e.token}%25", refused=None)],
    ("GET", f"{V2}/projects/{{project_hash}}"): lambda e: [Attempt("GET", f"{V2}/projects/{e.project}")],
    ("GET", f"{V2}/projects/{{project_hash}}/datasets"): lambda e: [
        Attempt("GET", f"{V2}/projects/{e.project}/datasets")
    ],
    ("POST", f"{V2}/ontologies"): lambda e: [
        Attempt(
            "POST",
            f"{V2}/ontologies",
            {"title": "intruder ontology", "editor": {"objects": [], "classifications": []}},
            refused=None,
        ),
    ],
    ("GET", f"{V2}/ontologies/{{ontology_hash}}"): lambda e: [Attempt("GET", f"{V2}/ontologies/{e.ontology}")],
    ("POST", "/public"): lambda e: [
        _rpc("dataset", "GET", ("dataset", e.dataset), None, {"dataset_access_settings": {"fetch_rows": True}}),
        _rpc("datasetlinkitems", "POST", ("dataset", e.dataset), e.dataset, {"item_uuids": [e.theirs["item"]]}),
        _rpc(
            "labelrow", "GET", ("project", e.project), [e.label_hash], {"get_signed_url": False, "multi_request": True}
        ),
        _rpc("projectdataset", "POST", ("project", e.project), None, {"dataset_hashes": [e.theirs["dataset"]]}),
    ],
    ("POST", "/public/user"): lambda e: [
        _rpc("project", "POST", (None, None), None, {"title": "taken", "dataset_hashes": [e.dataset]}),
    ],
}
#: Organisation-wide by design: the sandbox is one organisation with no organisation-admin role, so every user
#: reads and saves the same metadata schema (Encord limits saving it to organisation admins). They hold no
#: user's folders, items, jobs, groups, datasets, projects or label rows; authentication is still required.
ORGANISATION_ROUTES = {
    ("GET", f"{V2}/organisation/client-metadata-schema-v2"),
    ("POST", f"{V2}/organisation/client-metadata-schema-v2"),
    ("GET", f"{V2}/organisation/client-metadata-schema"),
    ("POST", f"{V2}/organisation/client-metadata-schema"),
    ("GET", f"{V2}/organisation/organisation-tags"),
}
SIGNED_ROUTES = sorted(set(CASES) | ORGANISATION_ROUTES)


def test_every_route_has_a_security_case(hardened: Sandbox) -> None:
    served = served_routes(create_app(hardened.backend))
    uncovered = served - set(CASES) - ORGANISATION_ROUTES - PUBLIC_ROUTES - BLOB_ROUTES
    assert not uncovered, f"routes without a security case: {sorted(uncovered)}"
    assert not (set(CASES) | ORGANISATION_ROUTES) - served, "cases for routes the app no longer serves"
    assert ("POST", "/public") in served and ("POST", "/public/user") in served


def _concrete(template: str, estate: Estate) -> str:
    return template.format(
        folder_uuid=estate.folder, item_uuid=estate.item, job_uuid=estate.job, project_hash=estate.project,
        ontology_hash=estate.ontology, sync_uuid=estate.job,
    )  # fmt: skip


# --- authentication, every route ---------------------------------------------------------------------------


def _v1_probe(path: str, estate: Estate) -> tuple[bytes, tuple[str | None, str | None]]:
    """A v1 body and resource headers that would be served if signed by the admin (so only auth refuses)."""
    if path == "/public/user":
        body = {"query_type": "project", "query_method": "POST", "values": {"uid": None, "payload": {}}}
        return json.dumps(body).encode(), (None, None)
    body = {"query_type": "dataset", "query_method": "GET", "values": {"uid": None, "payload": None}}
    return json.dumps(body).encode(), ("dataset", estate.dataset)


@pytest.mark.parametrize("route", SIGNED_ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_unauthenticated_requests_are_refused_on_every_route(
    route: tuple[str, str], hardened: Sandbox, estate: Estate
) -> None:
    method, template = route
    admin_key, stranger = _key(hardened.private_key_path), Ed25519PrivateKey.generate()
    target = _concrete(template, estate)
    url = hardened.domain + target
    if target.startswith("/public"):
        body, resource = _v1_probe(target, estate)
        attempts = {
            "unsigned": (url, {}, body),
            "unknown key": (url, _v1_headers(hardened.domain, stranger, body, resource), body),
            "tampered body": (url, _v1_headers(hardened.domain, admin_key, body, resource), body + b" "),
            "replayed an hour late (v2 signature)": (url, _v2_stale(admin_key, method, target, body, 3600), body),
        }
    else:
        body = b"{}" if method in ("POST", "PATCH") else b""
        signed, _ = _v2_signed(admin_key, method, url)
        signed_body = {**_v2_signed(admin_key, method, url, {})[0]} if body else signed
        v1_valid = f"{_key_hex(admin_key)}:{admin_key.sign(hashlib.sha256(body).digest()).hex()}"
        attempts = {
            "unsigned": (url, {}, body),
            "unknown key": (url, _v2_signed(stranger, method, url, {} if body else None)[0], body),
            "replayed an hour late": (url, _v2_stale(admin_key, method, target, body, 3600), body),
            "replayed just outside the window": (url, _v2_stale(admin_key, method, target, body, 301), body),
            "tampered query": (url + ("&" if "?" in url else "?") + "pageSize=1", signed_body, body),
            "v1 Authorization on a v2 route": (url, {"Authorization": v1_valid}, body),
        }
        if body:
            attempts["tampered body"] = (url, signed_body, b'{"name": "forged"}')
        if _UUID.search(url):  # another resource than the one signed for
            attempts["tampered path"] = (_UUID.sub(str(uuid.uuid4()), url, count=1), signed_body, body)
    with unchanged(hardened):
        for case, (to, headers, content) in attempts.items():
            status, message = _refusal(_send(method, to, headers, content))
            assert status == 401, f"{case}: {status} {message}"
            assert message, case


def test_a_replay_inside_the_window_is_served_and_one_outside_it_is_not(hardened: Sandbox, estate: Estate) -> None:
    """The v2 scheme has no nonce: urllib3 re-sends the same signed request on retries, so a replay inside the
    ±300 s window is accepted by design; the window is what bounds a captured request's life."""
    key, target = _key(hardened.private_key_path), f"{STORAGE}/folders/{estate.folder}"
    for age, expected in ((0, 200), (290, 200), (310, 401), (-310, 401)):
        response = _send("GET", hardened.domain + target, _v2_stale(key, "GET", target, b"", age))
        assert response.status_code == expected, (age, response.text)


# --- a second user, every route ---------------------------------------------------------------------------------


def _as_intruder(hardened: Sandbox, intruder_key: Path, attempt: Attempt) -> httpx.Response:
    key = _key(intruder_key)
    url = hardened.domain + attempt.path
    if attempt.v1 is not None:
        body = _body_bytes(attempt.body)
        return _send(attempt.method, url, _v1_headers(hardened.domain, key, body, attempt.v1), body)
    headers, body = _v2_signed(key, attempt.method, url, attempt.body)
    return _send(attempt.method, url, headers, body)


def _intruder_writes(before: State, after: State, estate: Estate, mentions: bool = True) -> list[str]:
    """What an intruder's served call did wrong: existing rows changed or removed, or (``mentions``) added rows
    that refer to the admin's resources. Adding rows of their own is what a create is for."""
    problems = []
    for table in sorted(set(before) | set(after)):
        old, new = set(before.get(table, [])), set(after.get(table, []))
        if old - new:
            problems.append(f"{table}: existing rows changed or removed: {sorted(old - new, key=repr)[:2]}")
        for row in new - old if mentions else ():
            named = sorted(i for i in estate.ids() if i in repr(row))
            if named:
                problems.append(f"{table}: an added row refers to the admin's {named}: {repr(row)[:160]}")
    return problems


@pytest.mark.parametrize("route", sorted(CASES), ids=lambda r: f"{r[0]} {r[1]}")
def test_a_second_user_cannot_reach_the_first_users_data(
    route: tuple[str, str], hardened: Sandbox, intruder_key: Path, estate: Estate
) -> None:
    for attempt in CASES[route](estate):
        settle(hardened)
        before = snapshot(hardened)
        response = _as_intruder(hardened, intruder_key, attempt)
        status, message = _refusal(response)
        settle(hardened)
        after = snapshot(hardened)
        where = f"{attempt.method} {attempt.path}: {status} {message[:300]}"
        assert estate.token not in response.text, f"the answer shows the admin's names: {where}"
        if attempt.refused is not None:
            assert status in attempt.refused and message, where
            assert not differences(before, after), f"{where} wrote: {differences(before, after)}"
        else:
            assert status == 200, where
            shown = sorted(i for i in estate.ids() if i in response.text)
            assert not shown, f"the answer shows the admin's {shown}: {where}"
            assert not _intruder_writes(before, after, estate), where


# --- the v1 dispatcher, handler by handler ----------------------------------------------------------------------


@pytest.mark.parametrize("handler", sorted(rpc.HANDLERS), ids="/".join)
def test_every_v1_handler_is_authenticated_and_authorised_first(
    handler: tuple[str, str], hardened: Sandbox, estate: Estate
) -> None:
    """Authentication happens before dispatch and the role check before the handler runs, so no handler can
    be reached unsigned, by an unknown key, with a body altered after signing, or without a declared role."""
    resource_type, roles, _ = rpc.HANDLERS[handler]
    assert (resource_type in ("dataset", "project") and roles) or handler == ("project", "POST"), handler
    resource_id = {"dataset": estate.dataset, "project": estate.project}.get(resource_type or "")
    body = json.dumps({"query_type": handler[0], "query_method": handler[1], "values": {"uid": None, "payload": {}}})
    url = hardened.domain + ("/public/user" if resource_type is None else "/public")
    resource = (resource_type, resource_id)
    admin_key, stranger = _key(hardened.private_key_path), Ed25519PrivateKey.generate()
    attempts = {
        "unsigned": ({}, body.encode()),
        "unknown key": (_v1_headers(hardened.domain, stranger, body.encode(), resource), body.encode()),
        "tampered body": (_v1_headers(hardened.domain, admin_key, body.encode(), resource), body.encode() + b" "),
    }
    with unchanged(hardened):
        for case, (headers, content) in attempts.items():
            status, message = _refusal(_send("POST", url, headers, content))
            assert status == 401 and message, f"{case}: {status} {message}"


# --- the upload sink ---------------------------------------------------------------------------------------------


def _with_path(url: str, raw_path: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{raw_path}?{parts.query}"


def test_a_url_signed_by_another_sandbox_is_refused(hardened: Sandbox, estate: Estate, tmp_path: Path) -> None:
    elsewhere = BlobStore(tmp_path / "blobs", BlobStore.load_or_create_secret(tmp_path / "secret"))
    forged = elsewhere.signed_url(hardened.domain, estate.placeholder, "put", 600)
    assert _with_path(forged, "") != _with_path(estate.placeholder_url, "")  # same key, op and expiry: not the same
    with unchanged(hardened):
        response = httpx.put(forged, content=samples.png())
        assert response.status_code == 403 and "signature does not match" in response.json()["message"]


@pytest.mark.parametrize(
    ("key", "raw_path"),
    [("..", "/_blobs/%2E%2E"), ("../escape", "/_blobs/..%2Fescape"), (".escape", "/_blobs/.escape")],
    ids=["dot-dot", "climbing-out", "hidden-name"],
)
def test_a_signed_key_that_would_leave_the_blob_store_writes_nothing(
    key: str, raw_path: str, hardened: Sandbox
) -> None:
    """Defence in depth: even a URL the sandbox itself signed for such a key cannot write outside its store."""
    url = _with_path(hardened.backend.blobs.signed_url(hardened.domain, key, "put", 600), raw_path)
    with unchanged(hardened):
        response = httpx.put(url, content=b"planted")
        assert response.status_code in (400, 403, 404), response.text
    assert not (hardened.data_dir / "escape").exists() and not (hardened.backend.blobs.root / ".escape").exists()


def test_a_reserved_slot_cannot_be_taken_through_another_folder(
    hardened: Sandbox, intruder_key: Path, estate: Estate
) -> None:
    """The intruder names the admin's reserved upload slot in a job of their own folder: the job is theirs, its
    unit fails naming the slot, and the slot stays the admin's, unused."""
    attempt = Attempt(
        "POST", f"{STORAGE}/folders/{estate.theirs['folder']}/data-upload-jobs", _job([estate.placeholder])
    )
    settle(hardened)
    before = snapshot(hardened)
    response = _as_intruder(hardened, intruder_key, attempt)
    settle(hardened)
    assert response.status_code == 200, response.text
    assert not _intruder_writes(before, snapshot(hardened), estate, mentions=False)
    (unit,) = hardened.backend.store.query("SELECT status, error FROM job_units WHERE job = ?", (response.json(),))
    assert unit["status"] == "ERROR" and estate.placeholder in unit["error"]
    slot = hardened.backend.store.query_one(
        "SELECT folder, is_placeholder FROM items WHERE uuid = ?", (estate.placeholder,)
    )
    assert slot is not None and (slot["folder"], slot["is_placeholder"]) == (estate.folder, 1)


def test_the_intruder_is_a_real_user_of_the_same_sandbox(
    hardened: Sandbox, intruder: EncordUserClient, estate: Estate
) -> None:
    """Guards the refusals above against passing for the wrong reason: the intruder's own calls are served."""
    assert {str(f.uuid) for f in intruder.list_storage_folders()} >= {estate.theirs["folder"]}
    assert [str(i.uuid) for i in intruder.get_storage_items([estate.theirs["item"]])] == [estate.theirs["item"]]
