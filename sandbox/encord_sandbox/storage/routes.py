"""Storage routes (the routes in docs/sandbox.md): folders, items, uploads, jobs, data groups."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from encord_sandbox.backend import Backend
from encord_sandbox.blobs import DOWNLOAD_URL_TTL_SECONDS, UPLOAD_URL_TTL_SECONDS
from encord_sandbox.deps import Authenticated, Caller, backend_of, flag, hold_long_poll, order, page_size
from encord_sandbox.errors import InvalidArgument, parse_uuid
from encord_sandbox.jobs import models as job_models
from encord_sandbox.jobs.integrations import FetchError, IntegrationConfig, parse_object_url
from encord_sandbox.jobs.specs import parse_job_request
from encord_sandbox.limits import MAX_ITEMS_PER_DELETE, MAX_ITEMS_PER_MOVE
from encord_sandbox.organisation import models as organisation_models
from encord_sandbox.organisation.metadata_schema import check_values
from encord_sandbox.storage import deletion, moves
from encord_sandbox.storage import models as storage_models
from encord_sandbox.storage import responses as wire
from encord_sandbox.storage.groups import plan_group
from encord_sandbox.syncs import models as sync_models

router = APIRouter(prefix="/v2/public/storage")

ITEM_TYPES = [
    "video",
    "image",
    "group",
    "imageGroup",
    "imageSequence",
    "dicomFile",
    "dicomSeries",
    "audio",
    "timeseries",
    "nifti",
    "plainText",
    "pdf",
    "scene",
]
UPLOADABLE_TYPES = ("image", "video", "audio", "plainText", "pdf", "nifti", "dicomFile")


def _signer(backend: Backend, caller: Caller, wanted: bool) -> wire.SignUrl | None:
    """Signed URLs point at the sandbox's blob store for uploads, and at the object itself otherwise."""
    if not wanted:
        return None

    def sign(row: sqlite3.Row) -> str | None:
        if row["blob_key"]:
            return backend.blobs.signed_url(caller.base_url, row["blob_key"], "get", DOWNLOAD_URL_TTL_SECONDS)
        return str(row["url"]) if row["url"] else None

    return sign


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidArgument(f"{what} must be a JSON object")
    return body


# --- folders ------------------------------------------------------------------------------------


@router.post("/folders")
def create_folder(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    backend = backend_of(request)
    body = _object(caller.json(), "folder")
    name = body.get("name")
    if not isinstance(name, str):
        raise InvalidArgument(f"folder name {name!r} must be a string")
    parent = parse_uuid(body["parent"], "parent folder") if body.get("parent") else None
    bind = _cloud_binding(backend, caller, body.get("cloudSyncedFolderParams"))
    folder_uuid = storage_models.create_folder(
        backend.store, caller.user, name, body.get("description") or "", body.get("clientMetadata"), parent, bind
    )
    return wire.folder(backend.store, storage_models.folder(backend.store, caller.user, folder_uuid))


def _cloud_binding(backend: Backend, caller: Caller, params: Any) -> Callable[[sqlite3.Connection, str], None] | None:
    """What binds a folder being created to its bucket (``cloud_synced_folder_params``), checked first: the
    integration must be the caller's and the remote URL one it reads."""
    if not params:
        return None
    params = _object(params, "cloudSyncedFolderParams")
    integration = organisation_models.integration(
        backend.store, caller.user, parse_uuid(params.get("integrationUuid"), "integrationUuid")
    )
    remote_url = params.get("remoteUrl")
    if not isinstance(remote_url, str) or not remote_url:
        raise InvalidArgument(f"remoteUrl {remote_url!r} must name the bucket or folder to sync with")
    try:
        parse_object_url(IntegrationConfig.from_dict(json.loads(integration["config"])), remote_url.rstrip("/") + "/x")
    except FetchError as exc:
        raise InvalidArgument(
            f"remoteUrl {remote_url!r} is not one integration {integration['uuid']} reads: {exc}"
        ) from None
    return lambda db, folder_uuid: sync_models.bind(db, folder_uuid, integration["uuid"], remote_url)


def _folder_page(request: Request, caller: Caller, parent: str | None, recursive: bool) -> dict[str, Any]:
    backend = backend_of(request)
    rows = storage_models.list_folders(
        backend.store,
        caller.user,
        parent,
        recursive,
        request.query_params.get("search"),
        order(request),
        flag(request, "desc"),
    )
    start = wire.decode_token(request.query_params.get("pageToken")) or 0
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise InvalidArgument("pageToken does not belong to a folder listing")
    size = page_size(request)
    chunk = rows[start : start + size]
    token = wire.encode_token(start + size) if start + size < len(rows) else None
    return wire.page([wire.folder(backend.store, r) for r in chunk], token)


@router.get("/folders")
def list_folders(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    return _folder_page(request, caller, None, flag(request, "isRecursive"))


@router.get("/search/folders")
def search_folders(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    return _folder_page(request, caller, None, True)


@router.patch("/folders/patch-bulk")
def patch_folders(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    backend = backend_of(request)
    patches = _object(_object(caller.json(), "body").get("folderPatches"), "folderPatches")
    updated = storage_models.patch_folders(backend.store, caller.user, {k: _snake_patch(v) for k, v in patches.items()})
    return wire.page(
        [wire.folder(backend.store, storage_models.folder(backend.store, caller.user, u)) for u in updated]
    )


@router.get("/folders/{folder_uuid}")
def get_folder(folder_uuid: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    backend = backend_of(request)
    return wire.folder(backend.store, storage_models.folder(backend.store, caller.user, folder_uuid))


@router.patch("/folders/{folder_uuid}")
def patch_folder(folder_uuid: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    backend = backend_of(request)
    (updated,) = storage_models.patch_folders(backend.store, caller.user, {folder_uuid: _snake_patch(caller.json())})
    return wire.folder(backend.store, storage_models.folder(backend.store, caller.user, updated))


@router.get("/folders/{folder_uuid}/folders")
def list_subfolders(folder_uuid: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    return _folder_page(request, caller, folder_uuid, flag(request, "isRecursive"))


# --- items --------------------------------------------------------------------------------------


@router.get("/folders/{folder_uuid}/items")
def list_items(folder_uuid: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    backend = backend_of(request)
    item_types = request.query_params.getlist("itemTypes")
    unknown = [t for t in item_types if t not in ITEM_TYPES]
    if unknown:
        raise InvalidArgument(f"unknown item type {unknown[0]!r}; expected one of {ITEM_TYPES}")
    sort = order(request)
    size = page_size(request)
    after = wire.decode_token(request.query_params.get("pageToken"))
    if after is not None and not (
        isinstance(after, list) and len(after) == 2 and all(isinstance(v, str) for v in after)
    ):
        raise InvalidArgument("pageToken does not belong to an item listing")
    rows = storage_models.list_items(
        backend.store,
        caller.user,
        folder_uuid,
        recursive=flag(request, "isRecursive"),
        search=request.query_params.get("search"),
        item_types=item_types,
        order=sort,
        desc=flag(request, "desc"),
        after=tuple(after) if after else None,
        limit=size + 1,
    )
    column = "created_at" if sort == "createdAt" else "name"
    token = wire.encode_token([rows[size - 1][column], rows[size - 1]["uuid"]]) if len(rows) > size else None
    sign = _signer(backend, caller, flag(request, "signUrls"))
    with_metadata = flag(request, "includeClientMetadata", True)
    return wire.page([wire.item(backend.store, r, sign, with_metadata) for r in rows[:size]], token)


@router.get("/items/{item_uuid}")
def get_item(item_uuid: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    backend = backend_of(request)
    sign = _signer(backend, caller, flag(request, "signUrl"))
    return wire.item(backend.store, storage_models.item(backend.store, caller.user, item_uuid), sign)


@router.post("/items/get-bulk")
def get_items(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    backend = backend_of(request)
    body = _object(caller.json(), "body")
    uuids = body.get("itemUuids")
    if not isinstance(uuids, list):
        raise InvalidArgument("itemUuids must be a list of UUIDs")
    sign = _signer(backend, caller, bool(body.get("signUrls")))
    return wire.page(
        [wire.item(backend.store, r, sign) for r in storage_models.items(backend.store, caller.user, uuids)]
    )


def _metadata_check(backend: Backend) -> Callable[[str, dict[str, Any]], None]:
    """Checks item metadata against the schema as it is *now*, read once per request."""
    schema = backend.metadata_schema()
    return lambda item_uuid, metadata: check_values(schema, metadata, f"item {item_uuid}")


@router.patch("/folders/{folder_uuid}/items/{item_uuid}")
def patch_item(folder_uuid: str, item_uuid: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    backend = backend_of(request)
    row = storage_models.item_in_folder(backend.store, caller.user, folder_uuid, item_uuid)
    storage_models.patch_items(
        backend.store, caller.user, {row["uuid"]: _snake_patch(caller.json())}, _metadata_check(backend)
    )
    return wire.item(backend.store, storage_models.item(backend.store, caller.user, item_uuid))


@router.patch("/items/patch-bulk")
def patch_items(request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    backend = backend_of(request)
    patches = _object(_object(caller.json(), "body").get("itemPatches"), "itemPatches")
    if len(patches) > 1000:
        raise InvalidArgument(f"{len(patches)} item patches in one call; the limit is 1000")
    updated = storage_models.patch_items(
        backend.store, caller.user, {k: _snake_patch(v) for k, v in patches.items()}, _metadata_check(backend)
    )
    return wire.page([wire.item(backend.store, r) for r in storage_models.items(backend.store, caller.user, updated)])


def _snake_patch(patch: Any) -> dict[str, Any]:
    patch = _object(patch, "patch")
    unknown = set(patch) - {"name", "description", "clientMetadata", "timeseriesSettings"}
    if unknown:
        raise InvalidArgument(f"unknown patch fields {sorted(unknown)}")
    return {
        "name": patch.get("name"),
        "description": patch.get("description"),
        "client_metadata": patch.get("clientMetadata"),
    }


@router.get("/folders/{folder_uuid}/items/{item_uuid}/child-items")
def child_items(folder_uuid: str, item_uuid: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    backend = backend_of(request)
    parent = storage_models.item_in_folder(backend.store, caller.user, folder_uuid, item_uuid)
    sign = _signer(backend, caller, flag(request, "signUrls"))
    return wire.page(
        [wire.item(backend.store, r, sign) for r in storage_models.children(backend.store, parent["uuid"])]
    )


@router.get("/folders/{folder_uuid}/items/{item_uuid}/summary")
def item_summary(folder_uuid: str, item_uuid: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    backend = backend_of(request)
    row = storage_models.item_in_folder(backend.store, caller.user, folder_uuid, item_uuid)
    return wire.summary(backend.store, row, flag(request, "includeGroupLayout"))


# --- uploads and registration jobs --------------------------------------------------------------


@router.post("/folders/{folder_uuid}/upload-signed-urls")
def upload_signed_urls(folder_uuid: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    backend = backend_of(request)
    body = _object(caller.json(), "body")
    item_type, count = body.get("itemType"), body.get("count", 1)
    if item_type not in UPLOADABLE_TYPES:
        raise InvalidArgument(f"itemType {item_type!r} cannot be uploaded; expected one of {UPLOADABLE_TYPES}")
    if not isinstance(count, int) or not 1 <= count <= 1000:
        raise InvalidArgument(f"count {count!r} must be an integer from 1 to 1000")
    uuids = storage_models.create_placeholders(backend.store, caller.user, folder_uuid, item_type, count)
    return wire.page(
        [
            {
                "itemUuid": u,
                "objectKey": u,
                "signedUrl": backend.blobs.signed_url(caller.base_url, u, "put", UPLOAD_URL_TTL_SECONDS),
                "uploadHeaders": {},
            }
            for u in uuids
        ]
    )


@router.post("/folders/{folder_uuid}/data-upload-jobs")
def start_job(folder_uuid: str, request: Request, caller: Caller = Authenticated) -> str:
    backend = backend_of(request)
    folder = storage_models.folder(backend.store, caller.user, folder_uuid)
    body = _object(caller.json(), "body")
    units, options = parse_job_request(body)
    integration = body.get("integrationHash")
    if integration:
        integration = organisation_models.integration(
            backend.store, caller.user, parse_uuid(integration, "integrationHash")
        )["uuid"]
    elif any(p is None for unit in units for p in unit["placeholders"]):
        raise InvalidArgument("files given by URL need an integrationHash naming the cloud integration")
    job_uuid = job_models.create_job(
        backend.store,
        caller.user,
        folder["uuid"],
        units,
        bool(body.get("ignoreErrors")),
        body.get("fileName"),
        integration,
        options,
    )
    backend.runner.submit(job_uuid)
    return job_uuid


@router.get("/folders/{folder_uuid}/data-upload-jobs/{job_uuid}")
def poll_job(folder_uuid: str, job_uuid: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    """Long poll: hold the request until the job finishes or the server-side cap expires."""
    backend = backend_of(request)
    job_models.job(backend.store, caller.user, folder_uuid, job_uuid)  # unknown: 404 at once, not after the wait

    def finished() -> bool:
        return job_models.job(backend.store, caller.user, folder_uuid, job_uuid)["status"] != "PENDING"

    hold_long_poll(request, finished)
    job = job_models.job(backend.store, caller.user, folder_uuid, job_uuid)
    return wire.job_state(job, job_models.job_units(backend.store, job["uuid"]))


@router.post("/folders/{folder_uuid}/data-upload-jobs/{job_uuid}/cancel")
def cancel_job(folder_uuid: str, job_uuid: str, request: Request, caller: Caller = Authenticated) -> dict[str, int]:
    backend = backend_of(request)
    job = job_models.job(backend.store, caller.user, folder_uuid, job_uuid)
    return {"unitsCancelledCount": job_models.cancel_job(backend.store, job["uuid"])}


# --- data groups --------------------------------------------------------------------------------


@router.post("/folders/{folder_uuid}/create-group-items")
def create_groups(folder_uuid: str, request: Request, caller: Caller = Authenticated) -> list[str]:
    backend = backend_of(request)
    body = caller.json()
    if not isinstance(body, list) or not body:
        raise InvalidArgument("create-group-items expects a non-empty JSON array of data groups")
    if len(body) > 1000:
        raise InvalidArgument(f"{len(body)} data groups in one call; the limit is 1000")
    plans = [plan_group(raw, f"groups[{i}]") for i, raw in enumerate(body)]
    schema = backend.metadata_schema()
    for i, plan in enumerate(plans):
        check_values(schema, plan.client_metadata, f"groups[{i}]")
    return storage_models.create_groups(backend.store, caller.user, folder_uuid, plans)


# --- deletion -----------------------------------------------------------------------------------


@router.post("/folders/{folder_uuid}/items/delete")
def delete_items(folder_uuid: str, request: Request, caller: Caller = Authenticated) -> dict[str, int]:
    """``StorageItem.delete()`` / ``StorageFolder.delete_storage_items()``: one atomic deletion
    (see :mod:`.deletion`)."""
    backend = backend_of(request)
    body = _object(caller.json(), "body")
    uuids, remove_frames = body.get("childUuids"), body.get("removeUnusedFrames", True)
    if not isinstance(uuids, list) or not uuids:
        raise InvalidArgument("childUuids must be a non-empty list of item UUIDs")
    if len(uuids) > MAX_ITEMS_PER_DELETE:
        raise InvalidArgument(f"{len(uuids)} items in one call; the limit is {MAX_ITEMS_PER_DELETE}")
    if not isinstance(remove_frames, bool):
        raise InvalidArgument(f"removeUnusedFrames {remove_frames!r} must be true or false")
    removed = deletion.delete_items(backend.store, caller.user, folder_uuid, uuids, remove_frames)
    _drop_blobs(backend, removed.blob_keys)
    return {"removedItemsCount": len(removed.removed_items), "removedFoldersCount": 0}


@router.post("/folders/{folder_uuid}/items/move")
def move_items(folder_uuid: str, request: Request, caller: Caller = Authenticated) -> None:
    """``StorageFolder.move_items_to_folder()`` / ``StorageItem.move_to_folder()`` (see :mod:`.moves`)."""
    body = _object(caller.json(), "body")
    uuids, allow = body.get("itemUuids"), body.get("allowSyncedDatasetMove", False)
    if not isinstance(uuids, list) or not uuids:
        raise InvalidArgument("itemUuids must be a non-empty list of item UUIDs")
    if len(uuids) > MAX_ITEMS_PER_MOVE:
        raise InvalidArgument(f"{len(uuids)} items in one call; the limit is {MAX_ITEMS_PER_MOVE}")
    if not isinstance(allow, bool):
        raise InvalidArgument(f"allowSyncedDatasetMove {allow!r} must be true or false")
    moves.move_items(backend_of(request).store, caller.user, folder_uuid, uuids, body.get("newParentUuid"), allow)


@router.delete("/folders/{folder_uuid}")
def delete_folder(folder_uuid: str, request: Request, caller: Caller = Authenticated) -> Response:
    """``StorageFolder.delete()``: an empty folder only (see :func:`.deletion.delete_folder`); 204 as the SDK allows."""
    backend = backend_of(request)
    _drop_blobs(backend, deletion.delete_folder(backend.store, caller.user, folder_uuid))
    return Response(status_code=204)


def _drop_blobs(backend: Backend, keys: list[str]) -> None:
    """Remove uploaded files no item uses any more, after the deletion committed (best effort: a leftover
    file is harmless, a failed deletion must not turn a committed one into an error)."""
    for key in keys:
        path = backend.blobs.root / key
        if path.parent != backend.blobs.root or key.startswith("."):
            continue
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
