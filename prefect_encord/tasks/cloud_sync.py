"""Encord's own cloud-synced folders, driven by bucket events instead of once every 24 hours.

A cloud-synced folder (Encord's "Cloud-synced folders", docs.encord.com/sdk-documentation/index-sdk/sdk-cloud-
sync-folders) is bound to a bucket URL when it is created; a *sync*, run by Encord, creates items for new files,
tombstones the items of deleted ones (restored if they return), updates the items of changed ones and, with
metadata ingestion enabled, applies ``x.metadata.json`` sidecars. Encord's UI runs a sync once a day; these tasks
start one when the bucket says something changed, and long-poll it, so a new object is an item within a minute.

* :func:`ensure_synced_folder` creates the folder bound to a block's bucket and prefix (or finds it so bound) and
  enables sidecar ingestion with the suffix asked for.
* :func:`sync_synced_folder` runs one sync through the job engine (:mod:`prefect_encord.jobs.engine`, ``kind
  "sync"``): started once, recorded, long-polled; a run killed mid-sync leaves its record, and the next one
  resumes polling that sync instead of starting another. It is **debounced**: given when the bucket changed
  (``changed_at``, a notification's time), it starts nothing if a sync that started after that moment already
  ran, since that sync saw the change; a burst of notifications queued behind one run costs one sync.

The choice per folder stays the user's: our registration (groups, DICOM series, image sequences, overwrites and
deletions as asked) or Encord's sync (its semantics; images, videos, audio, PDFs and text only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from encord.orm.storage import CloudSyncedFolderParams, SidecarMatcherSuffix
from prefect import task
from pydantic import BaseModel, Field

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.blocks.storage import CloudStorageIntegration, resolve_integration
from prefect_encord.jobs.api_retries import call_with_retries
from prefect_encord.jobs.engine import DataJobs, StartedJob, is_pending
from prefect_encord.planning.objects import as_utc
from prefect_encord.planning.sidecars import check_suffix
from prefect_encord.runtime.run_logger import run_logger
from prefect_encord.state.cloud_syncs import last_sync_started, record_sync_started
from prefect_encord.state.item_map import Status
from prefect_encord.state.job_ledger import JobLedger
from prefect_encord.state.locks import exclusive
from prefect_encord.tasks.folders import FolderPath, ensure_folder

#: How long a sync is long-polled before the task gives up (a retry resumes polling the same sync).
DEFAULT_SYNC_TIMEOUT_SECONDS = 3600


class SyncResult(BaseModel):
    """One sync's outcome: its id and status, Encord's counters, or why none was started (debounced)."""

    sync_id: str = Field(default="", description="The sync's UUID; empty when a later sync had covered the change.")
    status: str = Field(default="", description="done, error or cancelled; empty when no sync was started.")
    counters: dict[str, int] = Field(default_factory=dict, description="Encord's counters of the sync's result.")
    covered_by: str = Field(default="", description="When no sync was started: the time of the one that covered it.")

    @property
    def files_done(self) -> int:
        return self.counters.get("upload_jobs_units_done", 0)

    @property
    def files_failed(self) -> int:
        return self.counters.get("upload_jobs_units_error", 0)


@task
def ensure_synced_folder(
    credentials: EncordCredentials, storage: CloudStorageIntegration, folder_path: str, sidecar_suffix: str = ""
) -> FolderPath:
    """The cloud-synced folder at ``folder_path`` bound to ``storage``'s bucket and prefix, created if missing;
    with ``sidecar_suffix``, its metadata ingestion reads sidecars with that suffix.

    Raises:
        ValueError: If a folder at that path exists and is not synced with that bucket and prefix, or the suffix
            is not one Encord takes.
    """
    suffix = check_suffix(sidecar_suffix) if sidecar_suffix else ""
    client = credentials.get_client()
    integration = call_with_retries(lambda: resolve_integration(client, storage.integration),
                                    f"resolving integration {storage.integration}")  # fmt: skip
    params = CloudSyncedFolderParams(integration_uuid=UUID(integration), remote_url=storage.remote_url)
    folder = ensure_folder.fn(credentials, folder_path, cloud_synced=params)
    if suffix:
        synced = client.get_storage_folder(UUID(folder.uuid))
        ingestion = synced.get_folder_config().metadata_ingestion
        if ingestion is None or ingestion.matcher.suffix != suffix or ingestion.paused:
            synced.enable_metadata_ingestion(SidecarMatcherSuffix(suffix=suffix))
    return folder


class SyncKind:
    """A cloud sync's part of the job engine: no units, no body but the folder, no items of its own (the sync
    creates them); the outcome is Encord's counters."""

    kind = "sync"
    integration_id = ""

    def __init__(self, timeout_seconds: int) -> None:
        self.timeout_seconds = timeout_seconds

    def spec(self, units: Sequence[str]) -> dict[str, Any]:
        return {"cloud_sync": list(units)}

    def outcome(self, job: StartedJob[str], state: Any) -> SyncResult:
        if is_pending(state):
            raise TimeoutError(
                f"cloud sync {job.record.job_id} is still running after {self.timeout_seconds} s; retry the task "
                "to resume polling it"
            )
        counters = {name: value for name, value in state.model_dump().items() if isinstance(value, int)}
        return SyncResult(sync_id=job.record.job_id, status=str(state.status.value), counters=counters)

    def items(self, outcome: SyncResult) -> Sequence[tuple[Mapping[str, str], Status]]:
        return []

    def failed(self, job: StartedJob[str], outcome: SyncResult) -> list[str]:
        return []  # a sync retries nothing itself: the next one sees what this one could not register

    def merge(
        self, first: StartedJob[str], outcome: SyncResult, retry: StartedJob[str], retried: SyncResult
    ) -> SyncResult:
        return retried


@task
def sync_synced_folder(
    credentials: EncordCredentials,
    folder_uuid: str,
    changed_at: datetime | None = None,
    ledger_dir: Path | str | None = None,
    timeout_seconds: int = DEFAULT_SYNC_TIMEOUT_SECONDS,
) -> SyncResult:
    """Run one sync of the cloud-synced folder and wait for it, unless a sync started after ``changed_at`` (when
    the bucket changed) already ran (see the module); returns its status and Encord's counters."""
    with exclusive(f"folder:{folder_uuid}", f"folder {folder_uuid}"):  # one sync of a folder at a time
        last = last_sync_started(folder_uuid)
        if changed_at is not None and last is not None and last > as_utc(changed_at):
            run_logger(__name__).info("no sync of folder %s needed: the sync started at %s saw the change of %s",
                                      folder_uuid, last.isoformat(), as_utc(changed_at).isoformat())  # fmt: skip
            return SyncResult(covered_by=last.isoformat())
        client = credentials.get_client()
        folder = call_with_retries(lambda: client.get_storage_folder(UUID(folder_uuid)), f"fetching {folder_uuid}")
        engine = DataJobs(folder, JobLedger(ledger_dir), SyncKind(timeout_seconds), timeout_seconds=timeout_seconds,
                          unit_retries=0)  # fmt: skip
        job = engine.start([folder_uuid])
        result = engine.settle(job)
        record_sync_started(folder_uuid, job.record.submitted_at)  # finished: it saw every change before its start
    run_logger(__name__).info("cloud sync %s of folder %s %s: %d files done, %d failed", result.sync_id, folder_uuid,
                              result.status, result.files_done, result.files_failed)  # fmt: skip
    return result
