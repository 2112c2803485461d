"""A cloud-synced folder's sync, as Encord documents it (``sync_private_data_with_cloud_synced_folder_start``).

The sync lists the bucket under the folder's remote URL (each page counted in ``scan_pages_processing_*``) and
compares it with what earlier syncs registered, by path:

* a file it never saw becomes an item, through an ordinary data-upload job (1,000 files a job, counted in
  ``upload_jobs_*`` and its files in ``upload_jobs_units_*``); a type a cloud-synced folder does not take (not
  an image, video, audio, PDF, plain text or HTML file: no image groups, sequences or DICOM series) is a failed
  unit, and so is a file the job could not read;
* a file it saw that is gone from the bucket makes its item a **tombstone** (``isTombstone``), kept, as Encord
  keeps it; a file that returns restores its item;
* a file whose checksum changed updates its item in place (same UUID), counted as a done unit;
* with metadata ingestion enabled (the folder config's suffix matcher, ``.metadata.json`` by default), a file
  named like another plus the suffix is not an item but that item's custom metadata, checked against the
  schema and written whenever the sidecar changed (unless ingestion is paused); a sidecar that is not a JSON
  object, or whose values the schema refuses, is a failed unit.

A listing that fails ends the sync with ERROR. Nothing here runs on the request's thread: the route starts the
sync and the job runner's thread runs it.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import sqlite3
from collections.abc import Callable
from typing import Any

from encord_sandbox.db import Database
from encord_sandbox.errors import InvalidArgument
from encord_sandbox.jobs import models as job_models
from encord_sandbox.jobs.fetchers import fetch, list_objects
from encord_sandbox.jobs.integrations import FetchError, IntegrationConfig
from encord_sandbox.jobs.specs import parse_job_request
from encord_sandbox.organisation import models as organisation_models
from encord_sandbox.storage import models as storage_models
from encord_sandbox.syncs import models

logger = logging.getLogger(__name__)

#: Files of one registration job.
_JOB_FILES = 1000
#: The JSON-spec key each supported type goes under; the rest are refused (Encord's cloud-synced folders take
#: images, videos, PDFs, text, HTML and audio).
_SPEC_KEYS = {"image": "images", "video": "videos", "audio": "audio", "application/pdf": "pdf", "text/plain": "text",
              "text/html": "text"}  # fmt: skip
DEFAULT_SIDECAR_SUFFIX = ".metadata.json"


def run_sync(
    store: Database,
    sync_uuid: str,
    run_job: Callable[[str], None],
    schema: Callable[[], dict[str, Any] | None],
    check: Callable[[dict[str, Any] | None, dict[str, Any], str], None],
) -> None:
    """Run one sync to its end; ``run_job(job_uuid)`` registers a data-upload job and returns once it settled."""
    sync = store.query_one("SELECT * FROM syncs WHERE uuid = ?", (sync_uuid,))
    assert sync is not None
    folder, owner = sync["folder"], sync["owner"]
    binding = store.query_one("SELECT * FROM synced_folders WHERE folder = ?", (folder,))
    assert binding is not None
    integration = organisation_models.integration(store, owner, binding["integration"])
    config = IntegrationConfig.from_dict(json.loads(integration["config"]))
    counters = dict.fromkeys(models.COUNTERS, 0)
    ingestion = json.loads(binding["config"]).get("metadataIngestion")
    suffix = ingestion["matcher"].get("suffix", DEFAULT_SIDECAR_SUFFIX) if ingestion else None
    known = models.files(store, folder)
    seen: set[str] = set()
    new: list[tuple[str, str, str]] = []
    changed: list[tuple[str, str]] = []
    sidecars: dict[str, tuple[str, str, str]] = {}  # the described file's path -> the sidecar's path, URL, checksum
    try:
        for page in list_objects(config, binding["remote_url"]):
            counters["scan_pages_processing_done"] += 1
            for path, url, checksum in page:
                if suffix and path.endswith(suffix) and len(path) > len(suffix):
                    sidecars[path[: -len(suffix)]] = (path, url, checksum)
                    continue
                seen.add(path)
                row = known.get(path)
                if row is None:
                    new.append((path, url, checksum))
                elif row["tombstone"] or row["checksum"] != checksum:
                    changed.append((path, checksum))
    except FetchError as exc:
        logger.warning("sync %s could not list %s: %s", sync_uuid, binding["remote_url"], exc)
        counters["scan_pages_processing_error"] += 1
        models.finish_sync(store, sync_uuid, "ERROR", counters)
        return
    with store.transaction() as db:
        db.executemany(
            "UPDATE synced_files SET tombstone = 1 WHERE folder = ? AND path = ?",
            [(folder, path) for path, row in known.items() if path not in seen and not row["tombstone"]],
        )
        db.executemany("UPDATE synced_files SET tombstone = 0, checksum = ? WHERE folder = ? AND path = ?",
                       [(checksum, folder, path) for path, checksum in changed])  # fmt: skip
    counters["upload_jobs_units_done"] += len(changed)
    for start in range(0, len(new), _JOB_FILES):
        _register(store, owner, folder, integration["uuid"], new[start : start + _JOB_FILES], run_job, counters)
    if suffix and not ingestion.get("paused"):
        _apply_sidecars(store, owner, folder, config, sidecars, schema(), check, counters)
    models.finish_sync(store, sync_uuid, "DONE", counters)


def _register(
    store: Database,
    owner: str,
    folder: str,
    integration: str,
    files: list[tuple[str, str, str]],
    run_job: Callable[[str], None],
    counters: dict[str, int],
) -> None:
    """One data-upload job for new files of supported types; each file an item named by its path."""
    by_key: dict[str, list[tuple[str, str, str]]] = {}  # spec key -> (path, URL, checksum), in the job's order
    for path, url, checksum in files:
        kind = mimetypes.guess_type(path)[0] or ""
        key = _SPEC_KEYS.get(kind) or _SPEC_KEYS.get(kind.split("/")[0])
        if key is None:
            counters["upload_jobs_units_error"] += 1  # not a type a cloud-synced folder takes
            continue
        by_key.setdefault(key, []).append((path, url, checksum))
    if not by_key:
        return
    spec = {key: [{"objectUrl": url, "title": path} for path, url, _ in entries] for key, entries in by_key.items()}
    units, options = parse_job_request({"externalFiles": {**spec, "skip_duplicate_urls": True}})
    order = [(path, checksum) for entries in by_key.values() for path, _, checksum in entries]  # units' order
    job_uuid = job_models.create_job(store, owner, folder, units, True, None, integration, options)
    run_job(job_uuid)
    results = job_models.job_units(store, job_uuid)
    done = [(order[r["idx"]], r["item_uuid"]) for r in results if r["status"] == "DONE" and r["item_uuid"]]
    with store.transaction() as db:
        db.executemany("INSERT OR REPLACE INTO synced_files VALUES (?, ?, ?, ?, 0)",
                       [(folder, path, item, checksum) for (path, checksum), item in done])  # fmt: skip
    counters["upload_jobs_units_done"] += len(done)
    counters["upload_jobs_units_error"] += len(results) - len(done)
    status = store.query_one("SELECT status FROM jobs WHERE uuid = ?", (job_uuid,))
    counters["upload_jobs_done" if status and status["status"] == "DONE" else "upload_jobs_error"] += 1


def _apply_sidecars(
    store: Database,
    owner: str,
    folder: str,
    config: IntegrationConfig,
    sidecars: dict[str, tuple[str, str, str]],
    schema: dict[str, Any] | None,
    check: Callable[[dict[str, Any] | None, dict[str, Any], str], None],
    counters: dict[str, int],
) -> None:
    """Write each changed sidecar's JSON object as its file's item's metadata (replacing it)."""
    applied = models.sidecars(store, folder)
    files = models.files(store, folder)

    def validate(item: str, metadata: dict[str, Any]) -> None:
        check(schema, metadata, f"item {item}")

    for target, (path, url, checksum) in sidecars.items():
        row: sqlite3.Row | None = files.get(target)
        if row is None or applied.get(path) == checksum:
            continue  # no item (yet) to describe, or applied as it is
        try:
            metadata = json.loads(fetch(config, url))
            if not isinstance(metadata, dict):
                raise InvalidArgument(f"sidecar {path} holds no JSON object")
            storage_models.patch_items(store, owner, {row["item"]: {"client_metadata": metadata}}, validate)
        except (FetchError, ValueError, InvalidArgument) as exc:
            logger.warning("sidecar %s not applied: %s", path, exc)
            counters["upload_jobs_units_error"] += 1
            continue
        with store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO synced_sidecars VALUES (?, ?, ?)", (folder, path, checksum))
        counters["upload_jobs_units_done"] += 1
