"""Dataset routes: v2 create and list (``get_datasets``: one ``{"result": [...]}`` answer), and the v1 RPC
calls on a dataset (get, data rows, link items, add users)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from encord_sandbox.datasets import models as datasets
from encord_sandbox.datasets import responses as dataset_responses
from encord_sandbox.deps import Authenticated, Caller, backend_of, json_object_body, title_filters
from encord_sandbox.organisation import access
from encord_sandbox.rpc import Call, add_members, handles

router = APIRouter(prefix="/v2/public")


@router.post("/datasets")
def create_dataset(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    body = json_object_body(caller)
    dataset_hash, folder = datasets.create(
        backend_of(request).store, caller.user, body.get("title"), body.get("description") or "",
        bool(body.get("createBackingFolder", True)),
    )  # fmt: skip
    return {"datasetUuid": dataset_hash, "backingFolderUuid": folder}


@router.get("/datasets/list")
def list_datasets(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    """``DatasetsWithUserRolesListResponse``: the whole answer at once, as the SDK reads no page token here."""
    filters = title_filters(request, "description")
    return {"result": datasets.list_for_user(backend_of(request).store, caller.user, filters)}


def _data_rows(call: Call, rows: list[Any], settings: dict[str, Any]) -> list[dict[str, Any]]:
    return [dataset_responses.data_row(r, bool(settings.get("fetch_client_metadata"))) for r in rows]


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
    return [dataset_responses.data_row(r, False) for r in rows]


@handles("datasetusers", "POST", "dataset", (access.DATASET_ADMIN,))
def add_dataset_users(call: Call) -> list[dict[str, Any]]:
    return add_members(call, "dataset", access.DATASET_ROLES)
