"""Project and ontology routes: v2 (create and get ontologies, get and list projects: ``list_projects`` is
``GET /projects``, paged) and the v1 RPC calls on a project (create, add or remove datasets, add users)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from encord_sandbox.datasets import models as datasets
from encord_sandbox.deps import Authenticated, Caller, backend_of, json_object_body, title_filters
from encord_sandbox.errors import Forbidden, InvalidArgument, parse_uuid
from encord_sandbox.limits import PROJECTS_PAGE_SIZE
from encord_sandbox.organisation import access
from encord_sandbox.projects import models as projects
from encord_sandbox.projects import responses as project_responses
from encord_sandbox.rpc import Call, add_members, handles
from encord_sandbox.storage import responses as wire

router = APIRouter(prefix="/v2/public")


@router.get("/projects")
def list_projects(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    """``Page[ProjectDTO]`` of the caller's projects, 100 a page (the SDK sends no page size here)."""
    store = backend_of(request).store
    rows = projects.list_for_user(
        store, caller.user, title_filters(request, "desc"), request.query_params.getlist("tagsAnyof")
    )
    start = wire.decode_token(request.query_params.get("pageToken")) or 0
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise InvalidArgument("pageToken does not belong to a project listing")
    chunk = rows[start : start + PROJECTS_PAGE_SIZE]
    token = wire.encode_token(start + PROJECTS_PAGE_SIZE) if start + PROJECTS_PAGE_SIZE < len(rows) else None
    return wire.page([project_responses.project_dto(store, r, r["role"]) for r in chunk], token)


@router.post("/ontologies")
def create_ontology(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    body = json_object_body(caller)
    store = backend_of(request).store
    ontology_hash = projects.create_ontology(
        store, caller.user, body.get("title"), body.get("description") or "", body.get("editor")
    )
    return project_responses.ontology_dto(projects.ontology(store, caller.user, ontology_hash))


@router.get("/ontologies/{ontology_hash}")
def get_ontology(ontology_hash: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    store = backend_of(request).store
    row = projects.ontology(store, caller.user, ontology_hash)
    return project_responses.ontology_dto(row, projects.ontology_role(store, caller.user, row["hash"]))


@router.get("/projects/{project_hash}")
def get_project(project_hash: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    store = backend_of(request).store
    project_hash = parse_uuid(project_hash, "project")
    role = access.require(store, "project", project_hash, caller.user, access.ANY_PROJECT_ROLE)
    return project_responses.project_dto(store, projects.get(store, project_hash), role)


@router.get("/projects/{project_hash}/datasets")
def project_datasets(project_hash: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    store = backend_of(request).store
    project_hash = parse_uuid(project_hash, "project")
    access.require(store, "project", project_hash, caller.user, access.ANY_PROJECT_ROLE)
    results = []
    for dataset_hash in projects.dataset_hashes(store, project_hash):
        dataset = datasets.get(store, dataset_hash)
        results.append(
            {"datasetHash": dataset["hash"], "title": dataset["title"], "description": dataset["description"]}
        )
    return {"results": results, "nextPageToken": None}


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

    def may_grant(role: int) -> None:
        caller_role = access.role_of(call.backend.store, "project", call.resource, call.user)
        if role == access.PROJECT_ADMIN and caller_role != access.PROJECT_ADMIN:
            raise Forbidden("only a project admin can grant the admin role")

    return add_members(call, "project", access.PROJECT_ROLES, may_grant)
