"""Authorisation on every v1 route (the routes in docs/sandbox.md).

The v1 scheme signs the body but not the ``ResourceType``/``ResourceID`` headers, so a valid signature
only proves *who* calls; the sandbox must then check that this user holds a role on the resource.
These tests send raw v1 requests exactly as the SDK builds them (its own ``SshConfig.define_headers``)
for every route in the dispatcher's table: signed by a user without a role they are refused with the
``AUTHORISATION_ERROR`` envelope and write nothing; the same request signed by the owner succeeds.
Roles granted with ``add_users`` then open exactly what the role allows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_ssh_private_key
from encord import EncordUserClient
from encord.configs import SshConfig
from encord.exceptions import AuthorisationError
from encord.orm.dataset import DatasetType, DatasetUserRole
from encord.utilities.ontology_user import OntologyUserRole
from encord.utilities.project_user import ProjectUserRole
from encord_sandbox import rpc
from encord_sandbox.server import Sandbox

OTHER_EMAIL = "other@sandbox.local"
TABLES = ("datasets", "data_units", "projects", "project_datasets", "label_rows", "roles", "ontologies")


def _token() -> str:
    return uuid.uuid4().hex[:8]


# --- raw v1 requests ----------------------------------------------------------------------------


def _admin_key(sandbox: Sandbox) -> Ed25519PrivateKey:
    key = load_ssh_private_key(sandbox.private_key_path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def _other_key(other_client: EncordUserClient) -> Ed25519PrivateKey:
    config = other_client._config.config
    assert isinstance(config, SshConfig)
    return config.private_key


def _body(query_type: str, method: str, uid: Any, payload: Any) -> str:
    """The body exactly as the SDK's querier serialises it (http/request.py)."""
    return json.dumps({"query_type": query_type, "query_method": method, "values": {"uid": uid, "payload": payload}})


def _post(
    sandbox: Sandbox,
    key: Ed25519PrivateKey,
    body: str,
    resource_type: str | None,
    resource_id: str | None,
    *,
    tamper: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    headers = SshConfig(key, domain=sandbox.domain).define_headers(resource_id, resource_type, body)
    sent = tamper(body) if tamper else body
    path = "/public/user" if resource_type is None else "/public"
    response = httpx.post(sandbox.domain + path, content=sent.encode(), headers=headers, timeout=30)
    result: dict[str, Any] = response.json()
    return result


def _snapshot(sandbox: Sandbox) -> dict[str, list[tuple[Any, ...]]]:
    store = sandbox.backend.store
    return {t: sorted(tuple(r) for r in store.query(f"SELECT * FROM {t}")) for t in TABLES}  # noqa: S608


# --- a world owned by the admin -----------------------------------------------------------------


@dataclass
class World:
    dataset: str
    spare_dataset: str
    project: str
    data_hash: str
    label_hash: str
    blob: dict[str, Any]
    unlinked_item: str


@pytest.fixture(scope="module")
def images(client: EncordUserClient, media_dir: Path) -> list[str]:
    folder = client.create_storage_folder(f"rpc-{_token()}")
    return [str(folder.upload_image(media_dir / name)) for name in ("red.png", "blue.png")]


@pytest.fixture
def world(client: EncordUserClient, images: list[str]) -> World:
    """Fresh admin-owned resources per test, so a request that *is* allowed cannot disturb another test."""
    dataset = client.create_dataset(f"rpc-{_token()}", DatasetType.CORD_STORAGE).dataset_hash
    client.get_dataset(dataset).link_items([uuid.UUID(images[0])])
    spare = client.create_dataset(f"rpc-spare-{_token()}", DatasetType.CORD_STORAGE).dataset_hash
    project = client.get_project(client.create_project(f"rpc-{_token()}", [dataset]))
    (row,) = project.list_label_rows_v2()
    row.initialise_labels()
    row.save()
    assert row.label_hash is not None
    (blob,) = project._client.get_label_rows([row.label_hash], get_signed_url=False)
    return World(dataset, spare, project.project_hash, row.data_hash, row.label_hash, dict(blob), images[1])


LIST_ROWS_PAYLOAD = {
    "edited_before": None,
    "edited_after": None,
    "label_statuses": None,
    "shadow_data_state": None,
    "include_uninitialised_labels": True,
    "data_hashes": None,
    "label_hashes": None,
    "data_title_eq": None,
    "data_title_like": None,
    "workflow_graph_node_title_eq": None,
    "workflow_graph_node_title_like": None,
    "include_client_metadata": False,
    "include_images_data": False,
    "include_children": False,
    "include_workflow_graph_node": True,
    "include_all_label_branches": False,
    "branch_name": None,
    "client_metadata_as_signed_url": False,
}
ACCESS = {"fetch_client_metadata": False, "fetch_rows": True}

# (query_type, method) → (ResourceType, ResourceID, uid, payload) built from the world, shaped as the SDK sends them.
Case = Callable[[World], tuple[str | None, str | None, Any, Any]]
CASES: dict[tuple[str, str], Case] = {
    ("dataset", "GET"): lambda w: ("dataset", w.dataset, None, {"dataset_access_settings": ACCESS}),
    ("datarows", "GET"): lambda w: (
        "dataset",
        w.dataset,
        None,
        {
            "title_eq": None,
            "title_like": "%",
            "created_before": None,
            "created_after": None,
            "data_types": None,
            "dataset_access_settings": ACCESS,
            "data_hashes": None,
        },
    ),  # fmt: skip
    ("datasetlinkitems", "POST"): lambda w: (
        "dataset",
        w.dataset,
        w.dataset,
        {"item_uuids": [w.unlinked_item], "duplicates_behavior": "SKIP"},
    ),
    ("datasetusers", "POST"): lambda w: (
        "dataset",
        w.dataset,
        w.dataset,
        {"user_emails": [OTHER_EMAIL], "user_role": int(DatasetUserRole.ADMIN)},
    ),
    ("project", "POST"): lambda w: (
        None,
        None,
        None,
        {"title": "taken over", "description": "", "dataset_hashes": [w.dataset], "workflow_type": "manual"},
    ),
    ("projectdataset", "POST"): lambda w: ("project", w.project, None, {"dataset_hashes": [w.spare_dataset]}),
    ("projectdataset", "DELETE"): lambda w: ("project", w.project, [w.dataset], None),
    ("projectusers", "POST"): lambda w: (
        "project",
        w.project,
        w.project,
        {"user_emails": [OTHER_EMAIL], "user_role": int(ProjectUserRole.ADMIN)},
    ),
    ("labelrowmetadata", "GET"): lambda w: ("project", w.project, None, LIST_ROWS_PAYLOAD),
    ("labelrow", "PUT"): lambda w: (
        "project",
        w.project,
        [w.data_hash],
        {"multi_request": True, "get_signed_url": False, "branch_name": "side"},
    ),
    ("labelrow", "GET"): lambda w: (
        "project",
        w.project,
        [w.label_hash],
        {
            "get_signed_url": False,
            "multi_request": True,
            "include_object_feature_hashes": None,
            "include_classification_feature_hashes": None,
            "include_reviews": False,
            "include_export_history": False,
            "include_archived": False,
        },
    ),  # fmt: skip
    ("labelrow", "POST"): lambda w: (
        "project",
        w.project,
        [w.label_hash],
        {"multi_request": True, "labels": [w.blob], "validate_before_saving": False},
    ),
    ("labelworkflowgraphnode", "POST"): lambda w: ("project", w.project, [w.label_hash], {"action": "complete"}),
}


def test_every_route_of_the_dispatcher_has_a_case() -> None:
    assert set(CASES) == set(rpc.HANDLERS)
    for key, (resource_type, _, _) in rpc.HANDLERS.items():
        assert resource_type in ("dataset", "project") or key == ("project", "POST"), key


def test_every_v1_route_of_the_contract_is_served() -> None:
    contract = {  # the v1 routes of docs/sandbox.md
        ("project", "POST"),
        ("dataset", "GET"),
        ("datarows", "GET"),
        ("datasetlinkitems", "POST"),
        ("projectdataset", "POST"),
        ("labelrowmetadata", "GET"),
        ("labelrow", "PUT"),
        ("labelrow", "GET"),
        ("labelrow", "POST"),
    }
    assert contract <= set(rpc.HANDLERS)


@pytest.mark.parametrize("route", sorted(CASES), ids=lambda r: "/".join(r))
def test_a_user_without_a_role_is_refused_and_the_owner_is_served(
    route: tuple[str, str], sandbox: Sandbox, other_client: EncordUserClient, world: World
) -> None:
    resource_type, resource_id, uid, payload = CASES[route](world)
    body = _body(*route, uid, payload)

    before = _snapshot(sandbox)
    refused = _post(sandbox, _other_key(other_client), body, resource_type, resource_id)
    assert refused["status"] == 403
    assert refused["response"] == ["AUTHORISATION_ERROR"]
    assert isinstance(refused["payload"], str) and refused["payload"]
    assert _snapshot(sandbox) == before  # nothing was written

    served = _post(sandbox, _admin_key(sandbox), body, resource_type, resource_id)
    assert served["status"] == 200, served
    assert served["response"] is not None


@pytest.mark.parametrize("route", sorted(k for k, v in CASES.items() if rpc.HANDLERS[k][0] is not None))
def test_an_unknown_resource_is_not_found(route: tuple[str, str], sandbox: Sandbox, world: World) -> None:
    resource_type, _, uid, payload = CASES[route](world)
    missing = str(uuid.uuid4())
    answer = _post(sandbox, _admin_key(sandbox), _body(*route, uid, payload), resource_type, missing)
    assert answer["status"] == 404
    assert answer["response"] == ["RESOURCE_NOT_FOUND_ERROR"]
    assert missing in answer["payload"]


def test_resource_headers_must_match_the_route(sandbox: Sandbox, world: World) -> None:
    body = _body("dataset", "GET", None, {"dataset_access_settings": ACCESS})
    for resource_type, resource_id in (("project", world.project), ("", world.dataset), ("dataset", "not-a-uuid")):
        answer = _post(sandbox, _admin_key(sandbox), body, resource_type, resource_id)
        assert (answer["status"], answer["response"]) == (400, ["INVALID_ARGUMENTS_ERROR"]), resource_type


def test_an_unknown_route_is_invalid(sandbox: Sandbox, world: World) -> None:
    answer = _post(sandbox, _admin_key(sandbox), _body("cordnotthere", "GET", None, {}), "dataset", world.dataset)
    assert (answer["status"], answer["response"]) == (400, ["INVALID_ARGUMENTS_ERROR"])
    assert "cordnotthere" in answer["payload"]


def test_a_tampered_body_is_unauthenticated(sandbox: Sandbox, world: World) -> None:
    body = _body("dataset", "GET", None, {"dataset_access_settings": ACCESS})
    tampered = _post(
        sandbox, _admin_key(sandbox), body, "dataset", world.dataset, tamper=lambda b: b.replace("false", "true")
    )
    assert tampered["status"] == 401
    assert tampered["response"] == ["AUTHENTICATION_ERROR"]

    # An unregistered key is refused the same way, even on a resource that exists.
    stranger = _post(sandbox, Ed25519PrivateKey.generate(), body, "dataset", world.dataset)
    assert (stranger["status"], stranger["response"]) == (401, ["AUTHENTICATION_ERROR"])

    # The untampered body is fine.
    assert _post(sandbox, _admin_key(sandbox), body, "dataset", world.dataset)["status"] == 200


# --- roles granted with add_users ---------------------------------------------------------------


def test_dataset_roles_granted_with_add_users(
    client: EncordUserClient, other_client: EncordUserClient, media_dir: Path, world: World
) -> None:
    with pytest.raises(AuthorisationError):
        other_client.get_dataset(world.dataset)

    dataset = client.get_dataset(world.dataset)
    granted = dataset.add_users([OTHER_EMAIL], DatasetUserRole.USER)
    assert [(u.user_email, u.user_role) for u in granted] == [(OTHER_EMAIL, DatasetUserRole.USER)]

    theirs = other_client.get_dataset(world.dataset)
    assert [r.uid for r in theirs.data_rows] == [r.uid for r in dataset.data_rows]
    assert len(theirs.list_data_rows(title_like="%.png")) == 1

    own_item = other_client.create_storage_folder(f"own-{_token()}").upload_image(media_dir / "green.jpg")
    with pytest.raises(AuthorisationError):
        theirs.link_items([own_item])  # linking needs the admin role
    with pytest.raises(AuthorisationError):
        theirs.add_users(["third@sandbox.local"], DatasetUserRole.USER)

    dataset.add_users([OTHER_EMAIL], DatasetUserRole.ADMIN)
    linked = other_client.get_dataset(world.dataset).link_items([own_item])
    assert [r.title for r in linked] == ["green.jpg"]
    assert len(client.get_dataset(world.dataset).data_rows) == 2

    # A dataset role lets its holder build a project over it.
    project_hash = other_client.create_project(f"theirs-{_token()}", [world.dataset])
    assert len(other_client.get_project(project_hash).list_label_rows_v2()) == 2


def test_project_roles_granted_with_add_users(
    client: EncordUserClient, other_client: EncordUserClient, world: World
) -> None:
    with pytest.raises(AuthorisationError):
        other_client.get_project(world.project)
    project = client.get_project(world.project)
    with pytest.raises(AuthorisationError):
        other_client.get_ontology(project.ontology_hash)

    project.add_users([OTHER_EMAIL], ProjectUserRole.VIEWER)
    viewed = other_client.get_project(world.project)
    assert viewed.title == project.title
    # A project role lets its holder read the project's ontology, as a user of it.
    assert viewed.ontology_structure.to_dict() == project.ontology_structure.to_dict()
    assert other_client.get_ontology(project.ontology_hash).user_role == OntologyUserRole.USER
    assert client.get_ontology(project.ontology_hash).user_role == OntologyUserRole.ADMIN
    (row,) = viewed.list_label_rows_v2()
    row.initialise_labels()  # fetching an existing row is reading
    with pytest.raises(AuthorisationError):
        row.save()
    with pytest.raises(AuthorisationError):
        row.workflow_complete()

    granted = project.add_users([OTHER_EMAIL], ProjectUserRole.ANNOTATOR)
    assert [(u.user_email, u.user_role) for u in granted] == [(OTHER_EMAIL, ProjectUserRole.ANNOTATOR)]
    annotated = other_client.get_project(world.project)
    (row,) = annotated.list_label_rows_v2()
    row.initialise_labels()
    row.save()
    row.workflow_complete()
    assert [r.workflow_graph_node.title for r in project.list_label_rows_v2() if r.workflow_graph_node] == ["Complete"]
    with pytest.raises(AuthorisationError):
        annotated.add_datasets([world.spare_dataset])  # managing datasets needs admin or team manager
    with pytest.raises(AuthorisationError):
        annotated.add_users(["third@sandbox.local"], ProjectUserRole.ANNOTATOR)

    project.add_users([OTHER_EMAIL], ProjectUserRole.TEAM_MANAGER)
    own_dataset = other_client.create_dataset(f"own-{_token()}", DatasetType.CORD_STORAGE).dataset_hash
    managed = other_client.get_project(world.project)
    assert managed.add_datasets([own_dataset]) is True
    with pytest.raises(AuthorisationError):
        managed.add_datasets([world.spare_dataset])  # a project role gives no role on the admin's other datasets
    assert [str(d.dataset_hash) for d in project.list_datasets()] == [world.dataset, own_dataset]
    with pytest.raises(AuthorisationError):
        managed.add_users(["third@sandbox.local"], ProjectUserRole.ADMIN)  # only an admin makes admins
    assert [u.user_role for u in managed.add_users(["third@sandbox.local"], ProjectUserRole.ANNOTATOR)] == [
        ProjectUserRole.ANNOTATOR
    ]
