"""An ingest through Encord's own cloud-synced folder instead of our registration (``method="encord-cloud-sync"``).

The folder at the ingest's path is a cloud-synced folder bound to the block's bucket and prefix
(:func:`~prefect_encord.tasks.cloud_sync.ensure_synced_folder`), and each run asks Encord for one sync, debounced by
the time the bucket changed (``changed_at``, which the event-driven deployment takes from the notification), and
long-polls it (:func:`~prefect_encord.tasks.cloud_sync.sync_synced_folder`). Encord's semantics apply: new files
become items, deleted ones tombstones, returning ones restored, changed ones updated, sidecars applied; our
include and exclude patterns, data groups, overwrite and deletion choices do not (they are refused up front, see
:func:`check_cloud_sync`). The run's table gives the sync's counters; its item map lists the folder's live items,
for the dataset step (only when there is one).
"""

from __future__ import annotations

from uuid import UUID

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.events.reporting import FILES, Outcome, RunReport
from prefect_encord.flows.parameters import CloudSource
from prefect_encord.limits import MAX_PAGE_SIZE
from prefect_encord.state.item_map import ItemMap, ItemMapWriter
from prefect_encord.state.run_ledger import RunLedger
from prefect_encord.tasks.cloud_sync import sync_synced_folder

#: The cloud source's options that mean our registration, and why a cloud sync cannot honour each.
_REGISTRATION_ONLY = {
    "include": "a cloud sync takes the whole prefix",
    "exclude": "a cloud sync takes the whole prefix",
    "modified_since": "a cloud sync compares every file",
    "on_changed": "a cloud sync updates changed files itself",
    "on_vanished": "a cloud sync tombstones deleted files itself",
    "dry_run": "Encord plans no sync",
    "sidecar_mode": "a cloud sync applies a sidecar its own way",
    "sidecar_unknown_keys": "a cloud sync applies a sidecar its own way",
}


def check_cloud_sync(source: CloudSource, grouping: object) -> None:
    """Refuse, before anything is written, what a cloud sync cannot do, naming the option.

    Raises:
        ValueError: If data groups or one of our registration's options are asked of a cloud sync.
    """
    if grouping is not None:
        raise ValueError("grouping needs method='register': Encord's cloud sync makes no data groups")
    defaults = CloudSource.model_fields
    for name, why in _REGISTRATION_ONLY.items():
        if getattr(source, name) != defaults[name].get_default(call_default_factory=True):
            raise ValueError(f"{name}={getattr(source, name)!r} needs method='register': {why}")


def sync_files(
    credentials: EncordCredentials,
    source: CloudSource,
    folder_uuid: str,
    ledger: RunLedger,
    report: RunReport,
    map_items: bool = False,
) -> ItemMap:
    """Run (or skip, debounced) one sync of the folder and report its counters; with ``map_items``, the item map
    lists the folder's live items (one listing page per 1,000), else it stays empty."""
    ledger.before(f"sync cloud-synced folder {folder_uuid} with {source.block.remote_url}")
    result = sync_synced_folder.submit(credentials, folder_uuid, changed_at=source.changed_at).result()
    where = source.block.remote_url
    if result.covered_by:
        report.record([Outcome(FILES, where, "skipped", f"the sync started at {result.covered_by} saw this change")])
    else:
        report.record([Outcome(FILES, where, "synced", f"cloud sync {result.sync_id} {result.status}",
                               count=result.files_done)])  # fmt: skip
        unregistered = "(unsupported types, unreadable files, refused sidecars)"
        report.record([Outcome(FILES, where, "failed", f"files cloud sync {result.sync_id} could not register "
                               f"{unregistered}", count=result.files_failed)])  # fmt: skip
        if result.status != "done":
            report.record([Outcome(FILES, where, "failed", f"cloud sync {result.sync_id} ended {result.status}")])
    folder = credentials.get_client().get_storage_folder(UUID(folder_uuid))
    with ItemMapWriter(ledger.item_map_path) as writer:
        live = folder.list_items(page_size=MAX_PAGE_SIZE, include_client_metadata=False) if map_items else []
        for item in live:
            if not item._orm_item.is_tombstone:  # the SDK keeps the flag on the item's record only
                writer.write({str(item.url or item.name): str(item.uuid)}, "present")
        return writer.close()
