"""Response shapes exactly as the SDK's pydantic DTOs require them (camelCase, nullable keys present).

Only translation lives here: rows from :mod:`store` in, JSON-ready dicts out. Under pydantic v2 an
``Optional`` field without a default is *required*, so every such key is always written, even
when its value is null (the routes in docs/sandbox.md).
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from encord_sandbox.db import Database
from encord_sandbox.errors import InvalidArgument
from encord_sandbox.jobs.runner import ACTIONS
from encord_sandbox.organisation import models as organisation_models
from encord_sandbox.storage import models as storage_models
from encord_sandbox.syncs import models as sync_models

SignUrl = Callable[[sqlite3.Row], "str | None"]


def page(results: Sequence[Any], next_token: str | None = None) -> dict[str, Any]:
    return {"results": list(results), "nextPageToken": next_token}


def encode_token(value: Any) -> str:
    """Page tokens are opaque to the SDK; ours is base64 JSON of where the next page starts."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def decode_token(token: str | None) -> Any:
    """A token we did not issue is a 400; silently restarting at page one could loop a client forever."""
    if not token:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError as exc:
        raise InvalidArgument(f"pageToken {token!r} was not issued by this server") from exc


def folder(store: Database, row: sqlite3.Row) -> dict[str, Any]:
    return {
        "uuid": row["uuid"],
        "parent": row["parent"],
        "name": row["name"],
        "description": row["description"],
        "clientMetadata": row["client_metadata"],
        "owner": organisation_models.user_email(store, row["owner"]),
        "createdAt": row["created_at"],
        "lastEditedAt": row["last_edited_at"],
        "userRole": "admin",
        "syncedDatasetHash": None,
        "pathToRoot": [
            {"uuid": r["uuid"], "parentUuid": r["parent"], "name": r["name"], "syncedDatasetHash": None}
            for r in storage_models.path_to_root(store, row["uuid"])
        ],
        **_cloud_binding(store, row["uuid"]),
    }


def _cloud_binding(store: Database, folder_uuid: str) -> dict[str, Any]:
    bound = sync_models.bound(store, folder_uuid)
    if bound is None:
        return {"folderType": "generic", "integrationHash": None, "remoteUrl": None}
    return {"folderType": "cloudLinked", "integrationHash": bound["integration"], "remoteUrl": bound["remote_url"]}


def item(
    store: Database, row: sqlite3.Row, sign_url: SignUrl | None = None, with_metadata: bool = True
) -> dict[str, Any]:
    return {
        "uuid": row["uuid"],
        "parent": row["folder"],
        "itemType": row["item_type"],
        "name": row["name"],
        "description": row["description"],
        "clientMetadata": row["client_metadata"] if with_metadata else "{}",
        "owner": organisation_models.user_email(store, row["owner"]),
        "createdAt": row["created_at"],
        "lastEditedAt": row["last_edited_at"],
        "isTombstone": sync_models.is_tombstone(store, row["uuid"]),
        "isPlaceholder": False,
        "backedDataUnitsCount": 0,
        "storageLocation": row["storage_location"],
        "integrationHash": row["integration_hash"],
        "url": row["url"],
        "signedUrl": sign_url(row) if sign_url else None,
        "fileSize": row["file_size"],
        "mimeType": row["mime_type"],
        "duration": row["duration"],
        "fps": row["fps"],
        "height": row["height"],
        "width": row["width"],
        "dicomInstanceUid": row["dicom_instance_uid"],
        "dicomStudyUid": row["dicom_study_uid"],
        "dicomSeriesUid": row["dicom_series_uid"],
        "frameCount": row["frame_count"],
        "audioSampleRate": row["audio_sample_rate"],
        "audioBitDepth": row["audio_bit_depth"],
        "audioCodec": row["audio_codec"],
        "audioNumChannels": row["audio_num_channels"],
    }


def job_state(job: sqlite3.Row, units: Sequence[sqlite3.Row]) -> dict[str, Any]:
    counts = {status: 0 for status in ("PENDING", "DONE", "ERROR", "CANCELLED")}
    for unit in units:
        counts[unit["status"]] += 1
    errors = [u for u in units if u["status"] == "ERROR"]
    return {
        "status": job["status"],
        "itemsWithNames": [
            {"itemUuid": u["item_uuid"], "name": u["name"]} for u in units if u["status"] == "DONE" and u["item_uuid"]
        ],
        "errors": [u["error"] for u in errors],
        "unitsPendingCount": counts["PENDING"],
        "unitsDoneCount": counts["DONE"],
        "unitsErrorCount": counts["ERROR"],
        "unitsCancelledCount": counts["CANCELLED"],
        "unitErrors": [_unit_error(u) for u in errors],
        "fileName": job["file_name"],
    }


def _unit_error(unit: sqlite3.Row) -> dict[str, Any]:
    spec = json.loads(unit["spec"])
    return {
        "objectUrls": spec["urls"],
        "error": unit["error"],
        "subtaskUuid": unit["subtask_uuid"],
        "actionDescription": ACTIONS.get(spec["kind"], "Uploading data"),
    }


def summary(store: Database, row: sqlite3.Row, include_layout: bool) -> dict[str, Any]:
    groups = storage_models.parents(store, row["uuid"])
    result: dict[str, Any] = {
        "frameInGroups": len(groups),
        "accessibleGroupItems": [
            {
                "uuid": g["uuid"],
                "name": g["name"],
                "parentUuid": g["folder"],
                "parentName": storage_models.folder(store, g["owner"], g["folder"])["name"],
                "itemType": g["item_type"],
            }
            for g in groups
        ],
        "usedInDatasets": 0,
        "accessibleDatasets": [],
        "groupLayout": None,
    }
    if include_layout and row["item_type"] == "group" and row["layout"]:
        layout = json.loads(row["layout"])
        result["groupLayout"] = {
            "layoutContents": {c["key"]: {"uuid": c["uuid"]} for c in storage_models.children(store, row["uuid"])},
            "layout": layout["layout"],
            "layoutSettings": layout["layoutSettings"],
            "timeline": layout["timeline"],
        }
    return result
