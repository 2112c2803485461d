"""v2 routes of the annotation half (the routes in docs/sandbox.md): datasets, ontologies, projects.

Plus the two title lookups the SDK makes on v2: ``get_datasets`` (``GET /datasets/list``, one
``{"result": [...]}`` answer) and ``list_projects`` (``GET /projects``, paged).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from encord_sandbox import access, datasets, projects, wire
from encord_sandbox.api.params import flag
from encord_sandbox.app import Authenticated, Caller, backend_of
from encord_sandbox.errors import InvalidArgument, parse_uuid
from encord_sandbox.limits import PROJECTS_PAGE_SIZE

router = APIRouter(prefix="/v2/public")


def _body(caller: Caller) -> dict[str, Any]:
    body = caller.json()
    if not isinstance(body, dict):
        raise InvalidArgument("request body must be a JSON object")
    return body


@router.post("/datasets")
def create_dataset(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    body = _body(caller)
    dataset_hash, folder = datasets.create(
        backend_of(request).store, caller.user, body.get("title"), body.get("description") or "",
        bool(body.get("createBackingFolder", True)),
    )  # fmt: skip
    return {"datasetUuid": dataset_hash, "backingFolderUuid": folder}


def _title_filters(request: Request, description: str) -> datasets.TitleFilters:
    """The listing filters as the SDK spells them; ``description`` is the key stem (datasets and projects differ)."""
    query = request.query_params
    flag(request, "includeOrgAccess")  # validated only: the sandbox has no organisation admins
    return datasets.TitleFilters(
        title_eq=query.get("titleEq"),
        title_like=query.get("titleLike"),
        description_eq=query.get(f"{description}Eq"),
        description_like=query.get(f"{description}Like"),
        created_before=query.get("createdBefore"),
        created_after=query.get("createdAfter"),
        edited_before=query.get("editedBefore"),
        edited_after=query.get("editedAfter"),
    )


@router.get("/datasets/list")
def list_datasets(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    """``DatasetsWithUserRolesListResponse``: the whole answer at once, as the SDK reads no page token here."""
    filters = _title_filters(request, "description")
    return {"result": datasets.list_for_user(backend_of(request).store, caller.user, filters)}


@router.get("/projects")
def list_projects(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    """``Page[ProjectDTO]`` of the caller's projects, 100 a page (the SDK sends no page size here)."""
    store = backend_of(request).store
    rows = projects.list_for_user(
        store, caller.user, _title_filters(request, "desc"), request.query_params.getlist("tagsAnyof")
    )
    start = wire.decode_token(request.query_params.get("pageToken")) or 0
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise InvalidArgument("pageToken does not belong to a project listing")
    chunk = rows[start : start + PROJECTS_PAGE_SIZE]
    token = wire.encode_token(start + PROJECTS_PAGE_SIZE) if start + PROJECTS_PAGE_SIZE < len(rows) else None
    return wire.page([projects.project_dto(store, r, r["role"]) for r in chunk], token)


@router.post("/ontologies")
def create_ontology(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    body = _body(caller)
    store = backend_of(request).store
    ontology_hash = projects.create_ontology(
        store, caller.user, body.get("title"), body.get("description") or "", body.get("editor")
    )
    return projects.ontology_dto(projects.ontology(store, caller.user, ontology_hash))


@router.get("/ontologies/{ontology_hash}")
def get_ontology(ontology_hash: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    store = backend_of(request).store
    row = projects.ontology(store, caller.user, ontology_hash)
    return projects.ontology_dto(row, projects.ontology_role(store, caller.user, row["hash"]))


@router.get("/projects/{project_hash}")
def get_project(project_hash: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    store = backend_of(request).store
    project_hash = parse_uuid(project_hash, "project")
    role = access.require(store, "project", project_hash, caller.user, access.ANY_PROJECT_ROLE)
    return projects.project_dto(store, projects.get(store, project_hash), role)


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
