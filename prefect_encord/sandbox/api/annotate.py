"""v2 routes of the annotation half (encord-api.md §11 rows 23–27): datasets, ontologies, projects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from prefect_encord.sandbox import access, datasets, projects
from prefect_encord.sandbox.app import Authenticated, Backend, Caller
from prefect_encord.sandbox.errors import InvalidArgument, parse_uuid

router = APIRouter(prefix="/v2/public")


def _backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


def _body(caller: Caller) -> dict[str, Any]:
    body = caller.json()
    if not isinstance(body, dict):
        raise InvalidArgument("request body must be a JSON object")
    return body


@router.post("/datasets")
def create_dataset(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    body = _body(caller)
    dataset_hash, folder = datasets.create(
        _backend(request).store, caller.user, body.get("title"), body.get("description") or "",
        bool(body.get("createBackingFolder", True)),
    )  # fmt: skip
    return {"datasetUuid": dataset_hash, "backingFolderUuid": folder}


@router.post("/ontologies")
def create_ontology(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    body = _body(caller)
    store = _backend(request).store
    ontology_hash = projects.create_ontology(
        store, caller.user, body.get("title"), body.get("description") or "", body.get("editor")
    )
    return projects.ontology_dto(projects.ontology(store, caller.user, ontology_hash))


@router.get("/ontologies/{ontology_hash}")
def get_ontology(ontology_hash: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    store = _backend(request).store
    row = projects.ontology(store, caller.user, ontology_hash)
    return projects.ontology_dto(row, projects.ontology_role(store, caller.user, row["hash"]))


@router.get("/projects/{project_hash}")
def get_project(project_hash: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    store = _backend(request).store
    project_hash = parse_uuid(project_hash, "project")
    role = access.require(store, "project", project_hash, caller.user, access.ANY_PROJECT_ROLE)
    return projects.project_dto(store, projects.get(store, project_hash), role)


@router.get("/projects/{project_hash}/datasets")
def project_datasets(project_hash: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    store = _backend(request).store
    project_hash = parse_uuid(project_hash, "project")
    access.require(store, "project", project_hash, caller.user, access.ANY_PROJECT_ROLE)
    results = []
    for dataset_hash in projects.dataset_hashes(store, project_hash):
        dataset = datasets.get(store, dataset_hash)
        results.append(
            {"datasetHash": dataset["hash"], "title": dataset["title"], "description": dataset["description"]}
        )
    return {"results": results, "nextPageToken": None}
