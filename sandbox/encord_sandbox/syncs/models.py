"""Cloud-synced folders' tables and transitions: the folder's binding and config, what each sync saw, the jobs.

A cloud-synced folder is a storage folder bound, when it is created, to a cloud integration and a remote URL (a
bucket or a folder in one), which cannot change afterwards; its config holds the metadata-sidecar ingestion
(``metadata_ingestion``: a suffix matcher, paused or not). Each file a sync registered is remembered by its path
under the remote URL with its item and checksum, and whether it is a tombstone (deleted from the bucket; restored
if it returns); each sidecar by its path and the checksum last applied. Encord documents these folders in
"Cloud-synced folders" (docs.encord.com/sdk-documentation/index-sdk/sdk-cloud-sync-folders).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from encord_sandbox.db import Database, new_uuid, now_iso
from encord_sandbox.errors import InvalidArgument, parse_uuid
from encord_sandbox.storage import models as storage_models

DDL = """
CREATE TABLE IF NOT EXISTS synced_folders (
    folder TEXT PRIMARY KEY, integration TEXT NOT NULL, remote_url TEXT NOT NULL, config TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS synced_files (
    folder TEXT NOT NULL, path TEXT NOT NULL, item TEXT NOT NULL, checksum TEXT NOT NULL,
    tombstone INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (folder, path));
CREATE INDEX IF NOT EXISTS synced_files_item ON synced_files(item);
CREATE TABLE IF NOT EXISTS synced_sidecars (
    folder TEXT NOT NULL, path TEXT NOT NULL, checksum TEXT NOT NULL, PRIMARY KEY (folder, path));
CREATE TABLE IF NOT EXISTS syncs (
    uuid TEXT PRIMARY KEY, folder TEXT NOT NULL, owner TEXT NOT NULL, status TEXT NOT NULL, counters TEXT NOT NULL,
    created_at TEXT NOT NULL);
"""

#: The counters of a sync's result, as ``SyncPrivateDataWithCloudSyncedFolderGetResultResponse`` names them.
COUNTERS = (
    "scan_pages_processing_pending", "scan_pages_processing_done", "scan_pages_processing_error",
    "scan_pages_processing_cancelled", "upload_jobs_pending", "upload_jobs_done", "upload_jobs_error",
    "upload_jobs_units_pending", "upload_jobs_units_done", "upload_jobs_units_error", "upload_jobs_units_cancelled",
)  # fmt: skip


def bind(db: sqlite3.Connection, folder_uuid: str, integration: str, remote_url: str) -> None:
    """Make a folder being created (inside the caller's transaction) cloud-synced with ``remote_url``."""
    db.execute("INSERT INTO synced_folders VALUES (?, ?, ?, '{}')", (folder_uuid, integration, remote_url))


def binding(store: Database, user: str, folder_uuid: str) -> sqlite3.Row:
    """The cloud-synced folder's binding; 400 for an ordinary folder, as Encord answers."""
    folder = storage_models.folder(store, user, folder_uuid)
    row = store.query_one("SELECT * FROM synced_folders WHERE folder = ?", (folder["uuid"],))
    if row is None:
        raise InvalidArgument(f"folder {folder_uuid} is not a cloud-synced folder")
    return row


def bound(store: Database, folder_uuid: str) -> sqlite3.Row | None:
    """The folder's binding if it is cloud-synced (no access check: for the folder's wire shape)."""
    return store.query_one("SELECT * FROM synced_folders WHERE folder = ?", (folder_uuid,))


def config(store: Database, user: str, folder_uuid: str) -> dict[str, Any]:
    """A folder's config: ``metadataIngestion`` for a cloud-synced folder that has it, nothing else."""
    folder = storage_models.folder(store, user, folder_uuid)
    row = store.query_one("SELECT config FROM synced_folders WHERE folder = ?", (folder["uuid"],))
    return json.loads(row["config"]) if row else {}


def set_config(store: Database, user: str, folder_uuid: str, body: dict[str, Any]) -> None:
    """Replace the folder's config; ``metadataIngestion`` is checked (a suffix of 1 to 128 characters)."""
    row = binding(store, user, folder_uuid)
    ingestion = body.get("metadataIngestion")
    if ingestion is not None:
        matcher = ingestion.get("matcher") if isinstance(ingestion, dict) else None
        suffix = matcher.get("suffix") if isinstance(matcher, dict) else None
        if not isinstance(suffix, str) or not 1 <= len(suffix) <= 128:
            raise InvalidArgument(f"metadataIngestion.matcher.suffix {suffix!r} must be 1 to 128 characters")
    with store.transaction() as db:
        db.execute("UPDATE synced_folders SET config = ? WHERE folder = ?", (json.dumps(body), row["folder"]))


def start_sync(store: Database, user: str, folder_uuid: str) -> str:
    row = binding(store, user, folder_uuid)
    sync_uuid = new_uuid()
    with store.transaction() as db:
        db.execute("INSERT INTO syncs VALUES (?, ?, ?, 'PENDING', ?, ?)",
                   (sync_uuid, row["folder"], user, json.dumps(dict.fromkeys(COUNTERS, 0)), now_iso()))  # fmt: skip
    return sync_uuid


def sync(store: Database, user: str, folder_uuid: str, sync_uuid: str) -> sqlite3.Row:
    folder = storage_models.folder(store, user, folder_uuid)
    row = store.query_one("SELECT * FROM syncs WHERE uuid = ?", (parse_uuid(sync_uuid, "sync job"),))
    if row is None or row["folder"] != folder["uuid"]:
        raise InvalidArgument(f"sync job {sync_uuid} does not exist in folder {folder_uuid}")
    return row


def sync_state(row: sqlite3.Row) -> dict[str, Any]:
    """A sync's result on the wire: its status (``pending``, ``done``, ``error``) and its counters, camelCase."""
    counters = json.loads(row["counters"])
    return {"status": str(row["status"]).lower(), **{_camel(name): counters[name] for name in COUNTERS}}


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


def finish_sync(store: Database, sync_uuid: str, status: str, counters: dict[str, int]) -> None:
    with store.transaction() as db:
        db.execute("UPDATE syncs SET status = ?, counters = ? WHERE uuid = ?",
                   (status, json.dumps(counters), sync_uuid))  # fmt: skip


def files(store: Database, folder_uuid: str) -> dict[str, sqlite3.Row]:
    """Every file a sync of the folder registered, by path."""
    return {r["path"]: r for r in store.query("SELECT * FROM synced_files WHERE folder = ?", (folder_uuid,))}


def sidecars(store: Database, folder_uuid: str) -> dict[str, str]:
    """The checksum last applied of every sidecar, by path."""
    rows = store.query("SELECT path, checksum FROM synced_sidecars WHERE folder = ?", (folder_uuid,))
    return {r["path"]: r["checksum"] for r in rows}


def is_tombstone(store: Database, item_uuid: str) -> bool:
    row = store.query_one("SELECT tombstone FROM synced_files WHERE item = ?", (item_uuid,))
    return bool(row and row["tombstone"])
