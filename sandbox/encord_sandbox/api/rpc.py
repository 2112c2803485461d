"""The legacy v1 RPC endpoint (``POST /public`` and ``/public/user``) and its dispatcher.

The SDK names the operation in the body (``query_type`` = a lowercased class name, ``query_method``)
and the resource in unsigned ``ResourceType``/``ResourceID`` headers, so each handler declares the
resource type and roles it needs and the dispatcher checks the caller's role *before* the handler
runs. Answers travel in the ``{"status": 200, "response": ...}`` envelope; errors as a one-element
code list with the message in ``payload`` (see :mod:`encord_sandbox.errors`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from encord_sandbox import access, datasets, labels, projects
from encord_sandbox.app import Authenticated, Backend, Caller, backend_of
from encord_sandbox.errors import Forbidden, InvalidArgument, SandboxError, parse_uuid

router = APIRouter()


@dataclass(frozen=True)
class Call:
    """One v1 call, authorised: who, on which resource, with what uid and payload."""

    backend: Backend
    user: str
    resource: str
    uid: Any
    payload: Any

    def payload_dict(self) -> dict[str, Any]:
        if self.payload is None:
            return {}
        if not isinstance(self.payload, dict):
            raise InvalidArgument(f"payload must be an object, got {self.payload!r}")
        return self.payload


Handler = Callable[[Call], Any]
HANDLERS: dict[tuple[str, str], tuple[str | None, Collection[int], Handler]] = {}


def handles(
    query_type: str, method: str, resource_type: str | None, roles: Collection[int] = ()
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[(query_type, method)] = (resource_type, roles, handler)
        return handler

    return register


def envelope_error(exc: SandboxError) -> JSONResponse:
    """The v1 error envelope; an error may carry a structured payload (``v1_payload``) the SDK reads."""
    payload = getattr(exc, "v1_payload", None) or exc.message
    return JSONResponse({"status": exc.status, "response": [exc.v1_code], "payload": payload})


@router.post("/public")
@router.post("/public/user")
def rpc(request: Request, caller: Caller = Authenticated) -> JSONResponse:
    backend = backend_of(request)
    body = caller.json()
    if not isinstance(body, dict) or "query_type" not in body or "query_method" not in body:
        raise InvalidArgument("a v1 request needs query_type, query_method and values")
    key = (str(body["query_type"]), str(body["query_method"]))
    if key not in HANDLERS:
        raise InvalidArgument(f"the sandbox does not serve {key[0]}/{key[1]}")
    resource_type, roles, handler = HANDLERS[key]
    values = body.get("values") or {}
    resource = request.headers.get("ResourceID", "")
    if resource_type is not None:
        if request.headers.get("ResourceType", "") != resource_type or not resource:
            raise InvalidArgument(f"{key[0]}/{key[1]} needs ResourceType {resource_type!r} and a ResourceID")
        resource = parse_uuid(resource, resource_type)
        access.require(backend.store, resource_type, resource, caller.user, roles)
    call = Call(backend, caller.user, resource, values.get("uid"), values.get("payload"))
    return JSONResponse({"status": 200, "response": handler(call)})


# --- datasets -----------------------------------------------------------------------------------


def _data_rows(call: Call, rows: list[Any], settings: dict[str, Any]) -> list[dict[str, Any]]:
    return [datasets.data_row(r, bool(settings.get("fetch_client_metadata"))) for r in rows]


@handles("dataset", "GET", "dataset", access.ANY_DATASET_ROLE)
def get_dataset(call: Call) -> dict[str, Any]:
    store = call.backend.store
    dataset = datasets.get(store, call.resource)
    settings = call.payload_dict().get("dataset_access_settings") or {}
    result = {
        "dataset_hash": dataset["hash"],
        "title": dataset["title"],
        "description": dataset["description"],
        "dataset_type": "CORD_STORAGE",
        "backing_folder_uuid": dataset["backing_folder"],
    }
    if settings.get("fetch_rows", True):
        result["data_rows"] = _data_rows(call, datasets.units(store, [call.resource]), settings)
    return result


@handles("datarows", "GET", "dataset", access.ANY_DATASET_ROLE)
def list_data_rows(call: Call) -> list[dict[str, Any]]:
    payload = call.payload_dict()
    rows = datasets.filter_rows(datasets.units(call.backend.store, [call.resource]), payload)
    return _data_rows(call, rows, payload.get("dataset_access_settings") or {})


@handles("datasetlinkitems", "POST", "dataset", (access.DATASET_ADMIN,))
def link_items(call: Call) -> list[dict[str, Any]]:
    payload = call.payload_dict()
    rows = datasets.link(
        call.backend.store, call.user, call.resource, payload.get("item_uuids"),
        payload.get("duplicates_behavior", "SKIP"),
    )  # fmt: skip
    return [datasets.data_row(r, False) for r in rows]


@handles("datasetusers", "POST", "dataset", (access.DATASET_ADMIN,))
def add_dataset_users(call: Call) -> list[dict[str, Any]]:
    emails, role = _users(call, access.DATASET_ROLES)
    for email in emails:
        access.grant(call.backend.store, "dataset", call.resource, call.backend.store.ensure_user(email), role)
    return [{"user_email": e, "user_role": role, "dataset_hash": call.resource} for e in emails]


def _users(call: Call, roles: dict[int, str]) -> tuple[list[str], int]:
    payload = call.payload_dict()
    emails, role = payload.get("user_emails"), payload.get("user_role")
    if not isinstance(emails, list) or not all(isinstance(e, str) and "@" in e for e in emails):
        raise InvalidArgument(f"user_emails {emails!r} must be a list of email addresses")
    if role not in roles:
        raise InvalidArgument(f"user_role {role!r} is not one of {sorted(roles)}")
    return emails, int(role)


# --- projects -----------------------------------------------------------------------------------


@handles("project", "POST", None)
def create_project(call: Call) -> str:
    return projects.create_project(call.backend.store, call.user, call.payload_dict())


@handles("projectdataset", "POST", "project", access.PROJECT_MANAGERS)
def add_project_datasets(call: Call) -> bool:
    projects.add_datasets(call.backend.store, call.user, call.resource, call.payload_dict().get("dataset_hashes"))
    return True


@handles("projectdataset", "DELETE", "project", access.PROJECT_MANAGERS)
def remove_project_datasets(call: Call) -> bool:
    projects.remove_datasets(call.backend.store, call.resource, call.uid)
    return True


@handles("projectusers", "POST", "project", access.PROJECT_MANAGERS)
def add_project_users(call: Call) -> list[dict[str, Any]]:
    """Team managers may add members but not admins: only an admin can make another admin."""
    emails, role = _users(call, access.PROJECT_ROLES)
    caller_role = access.role_of(call.backend.store, "project", call.resource, call.user)
    if role == access.PROJECT_ADMIN and caller_role != access.PROJECT_ADMIN:
        raise Forbidden("only a project admin can grant the admin role")
    for email in emails:
        access.grant(call.backend.store, "project", call.resource, call.backend.store.ensure_user(email), role)
    return [{"user_email": e, "user_role": role, "project_hash": call.resource} for e in emails]


# --- label rows ---------------------------------------------------------------------------------


def _uids(call: Call) -> list[str]:
    uids = call.uid if isinstance(call.uid, list) else [call.uid]
    if not uids or not all(isinstance(u, str) and u for u in uids):
        raise InvalidArgument(f"uid {call.uid!r} must name one or more rows")
    return uids


@handles("labelrowmetadata", "GET", "project", access.ANY_PROJECT_ROLE)
def list_label_rows(call: Call) -> list[dict[str, Any]]:
    project = projects.get(call.backend.store, call.resource)
    return labels.list_metadata(call.backend.store, project, call.payload_dict())


@handles("labelrow", "PUT", "project", access.LABELLERS)
def create_label_rows(call: Call) -> list[dict[str, Any]]:
    project = projects.get(call.backend.store, call.resource)
    return labels.create(call.backend.store, project, _uids(call), call.payload_dict().get("branch_name"))


@handles("labelrow", "GET", "project", access.ANY_PROJECT_ROLE)
def get_label_rows(call: Call) -> list[dict[str, Any]]:
    project = projects.get(call.backend.store, call.resource)
    return labels.fetch(call.backend.store, project, _uids(call))


@handles("labelrow", "POST", "project", access.LABELLERS)
def save_label_rows(call: Call) -> bool:
    project = projects.get(call.backend.store, call.resource)
    payload = call.payload_dict()
    blobs = payload.get("labels") if payload.get("multi_request") else [payload]
    labels.save(call.backend.store, project, _uids(call), blobs)
    return True


@handles("labelworkflowgraphnode", "POST", "project", access.LABELLERS)
def move_in_workflow(call: Call) -> bool:
    project = projects.get(call.backend.store, call.resource)
    labels.workflow_action(call.backend.store, project, _uids(call), str(call.payload_dict().get("action")))
    return True
