"""When the last finished sync of each cloud-synced folder started: what debounces event-driven syncs.

A sync sees every change made before it started, so a notification older than the start of a sync that has
finished needs no sync of its own (:func:`~prefect_encord.tasks.cloud_sync.sync_synced_folder`). One small file
per folder, beside the inventories (``$PREFECT_HOME/encord/inventory``), written atomically. Losing it costs one
sync more, never one less.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect_encord.planning.objects import as_utc
from prefect_encord.state.durable_files import write_atomically
from prefect_encord.state.settings import local_directory


def _path(folder_uuid: str) -> Path:
    return local_directory("inventory") / f"{folder_uuid}.last-sync"


def last_sync_started(folder_uuid: str) -> datetime | None:
    """When the folder's last finished sync started; None if no sync finished here (or the file is unreadable)."""
    try:
        return as_utc(datetime.fromisoformat(_path(folder_uuid).read_text().strip()))
    except (OSError, ValueError):
        return None


def record_sync_started(folder_uuid: str, started_at: datetime) -> None:
    """Record that a sync which started at ``started_at`` has finished (a later start only moves it forward)."""
    last = last_sync_started(folder_uuid)
    if last is None or as_utc(started_at) > last:
        write_atomically(_path(folder_uuid), as_utc(started_at).isoformat(), "the last cloud sync's time")
