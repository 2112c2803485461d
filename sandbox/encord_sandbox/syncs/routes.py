"""Cloud-synced folder routes: start a sync, long-poll its result, read and write the folder's config."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from encord_sandbox.deps import Authenticated, Caller, backend_of, hold_long_poll
from encord_sandbox.errors import InvalidArgument
from encord_sandbox.organisation.metadata_schema import check_values
from encord_sandbox.syncs import models
from encord_sandbox.syncs.runner import run_sync

router = APIRouter(prefix="/v2/public/storage")


@router.post("/folders/{folder_uuid}/cloud-synced-folder-syncs")
def start_sync(folder_uuid: str, request: Request, caller: Caller = Authenticated) -> str:
    """``StorageFolder.sync_private_data_with_cloud_synced_folder_start()``: the sync's UUID; it runs on."""
    backend = backend_of(request)
    sync_uuid = models.start_sync(backend.store, caller.user, folder_uuid)
    backend.runner.submit_task(
        lambda: run_sync(backend.store, sync_uuid, backend.runner.run_job, backend.metadata_schema, check_values)
    )
    return sync_uuid


@router.get("/folders/{folder_uuid}/cloud-linked-folder-syncs/{sync_uuid}/long-polling")
def poll_sync(folder_uuid: str, sync_uuid: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    """``…_get_result()``: held until the sync ends or the server's cap passes, then its status and counters."""
    backend = backend_of(request)
    models.sync(backend.store, caller.user, folder_uuid, sync_uuid)

    def finished() -> bool:
        return models.sync(backend.store, caller.user, folder_uuid, sync_uuid)["status"] != "PENDING"

    hold_long_poll(request, finished)
    return models.sync_state(models.sync(backend.store, caller.user, folder_uuid, sync_uuid))


@router.get("/folders/{folder_uuid}/folder-config")
def get_config(folder_uuid: str, request: Request, caller: Caller = Authenticated) -> dict[str, Any]:
    """``StorageFolder.get_folder_config()``."""
    return models.config(backend_of(request).store, caller.user, folder_uuid)


@router.post("/folders/{folder_uuid}/folder-config")
def set_config(folder_uuid: str, request: Request, caller: Caller = Authenticated) -> None:
    """``StorageFolder.enable_metadata_ingestion()`` writes the whole config back."""
    body = caller.json()
    if not isinstance(body, dict):
        raise InvalidArgument("the folder config must be a JSON object")
    models.set_config(backend_of(request).store, caller.user, folder_uuid, body)
