"""The wire shapes of datasets: a data unit as the SDK's DataRow dict."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from encord_sandbox.datasets.models import DATA_TYPES, STORAGE_LOCATION_CODES


def data_row(row: sqlite3.Row, with_metadata: bool, signed_url: str | None = None) -> dict[str, Any]:
    """The SDK's ``DataRow`` dict (snake_case, every required key present)."""
    upper, _ = DATA_TYPES[row["item_type"]]
    result: dict[str, Any] = {
        "data_hash": row["data_hash"],
        "data_title": row["name"],
        "data_type": upper,
        "created_at": row["unit_created_at"],
        "last_edited_at": row["unit_last_edited_at"],
        "width": row["width"],
        "height": row["height"],
        "file_link": row["url"] or f"encord://{row['uuid']}",
        "file_size": row["file_size"],
        "file_type": row["mime_type"],
        "storage_location": STORAGE_LOCATION_CODES.get(row["storage_location"], 0),
        "frames_per_second": row["fps"],
        "duration": row["duration"],
        "backing_item_uuid": row["uuid"],
        "signed_url": signed_url,
    }
    if with_metadata:
        result["client_metadata"] = json.loads(row["client_metadata"])
    return result
