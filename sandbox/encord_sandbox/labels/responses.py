"""The wire shapes of label rows: a row's metadata as the SDK lists it, and the skeleton blob a new row starts from
(data units, frames, DICOM slices, spaces).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from encord_sandbox.datasets import models as datasets
from encord_sandbox.db import Database
from encord_sandbox.storage import models as storage_models


def row_metadata(
    store: Database, unit: sqlite3.Row, dataset: sqlite3.Row, row: sqlite3.Row | None, branch: str,
    stage_titles: dict[str, dict[str, Any]], payload: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    upper, _ = datasets.DATA_TYPES[unit["item_type"]]
    stage = stage_titles.get(row["stage"] if row else "Annotate") or next(iter(stage_titles.values()))
    metadata: dict[str, Any] = {
        "label_hash": row["label_hash"] if row else None,
        "created_at": row["created_at"] if row else None,
        "last_edited_at": row["last_edited_at"] if row else None,
        "data_hash": unit["data_hash"],
        "dataset_hash": dataset["hash"],
        "dataset_title": dataset["title"],
        "data_title": unit["name"],
        "data_type": upper,
        "data_link": unit["url"],
        "spaces": spaces(store, unit),
        "label_status": row["label_status"] if row else "NOT_LABELLED",
        "annotation_task_status": row["task_status"] if row else "QUEUED",
        "is_shadow_data": False,
        "number_of_frames": _number_of_frames(unit),
        "duration": unit["duration"],
        "frames_per_second": unit["fps"],
        "height": unit["height"],
        "width": unit["width"],
        "audio_sample_rate": unit["audio_sample_rate"],
        "audio_codec": unit["audio_codec"],
        "audio_bit_depth": unit["audio_bit_depth"],
        "audio_num_channels": unit["audio_num_channels"],
        "file_type": unit["mime_type"],
        "branch_name": branch,
        "backing_item_uuid": unit["uuid"],
        "is_valid": True,
    }
    if payload.get("include_workflow_graph_node", True):
        metadata["workflow_graph_node"] = {"uuid": stage["uuid"], "title": stage["title"]}
    if payload.get("include_client_metadata"):
        metadata["client_metadata"] = json.loads(unit["client_metadata"])
    if payload.get("include_images_data") and unit["item_type"] in ("imageGroup", "imageSequence"):
        metadata["images_data"] = [
            _image_data(frame, i) for i, frame in enumerate(storage_models.children(store, unit["uuid"]))
        ]
    return metadata


def _image_data(frame: sqlite3.Row, index: int) -> dict[str, Any]:
    """One ``images_data`` entry: exactly the fields of the SDK's ``LabelRowReadOnlyDataImagesDataEntry``."""
    return {
        "index": index,
        "title": frame["name"],
        "file_type": frame["mime_type"],
        "height": frame["height"],
        "width": frame["width"],
        "image_hash": frame["uuid"],  # the frame's key in the image group's data_units
    }


def _number_of_frames(unit: sqlite3.Row) -> int:
    if unit["item_type"] == "pdf":
        return int(unit["num_pages"] or 1)
    return int(unit["frame_count"] or 1)


def spaces(store: Database, unit: sqlite3.Row) -> dict[str, Any]:
    """Spaces of a data-group row, keyed by each child's data hash; other rows have none."""
    if unit["item_type"] != "group":
        return {}
    result = {}
    for child in datasets.child_units(store, unit["data_hash"]):
        space = _space(child)
        if space is not None:
            result[child["data_hash"]] = space
    return result


def _space(child: sqlite3.Row) -> dict[str, Any] | None:
    info: dict[str, Any] = {
        "labels": {},
        "child_info": {"layout_key": child["layout_key"], "file_name": child["name"], "data_link": child["url"]},
    }
    kind = child["item_type"]
    if kind == "image":
        return {**info, "space_type": "image", "width": child["width"], "height": child["height"]}
    if kind == "video":
        return {**info, "space_type": "video", "number_of_frames": _number_of_frames(child), "width": child["width"],
                "height": child["height"], "data_duration": child["duration"], "data_fps": child["fps"]}  # fmt: skip
    if kind == "plainText":
        return {**info, "space_type": "html" if child["mime_type"] == "text/html" else "text"}
    if kind == "audio":
        return {**info, "space_type": "audio", "duration_ms": int((child["duration"] or 0) * 1000)}
    if kind == "pdf":
        return {**info, "space_type": "pdf", "number_of_pages": _number_of_frames(child)}
    return None  # image groups, sequences and DICOM inside data groups have no space in this sandbox


def skeleton(store: Database, unit: sqlite3.Row, dataset: sqlite3.Row, row: sqlite3.Row) -> dict[str, Any]:
    """The initial label blob of a freshly created row, shaped for the unit's data type."""
    _, lower = datasets.DATA_TYPES[unit["item_type"]]
    blob: dict[str, Any] = {
        "label_hash": row["label_hash"],
        "branch_name": row["branch_name"],
        "created_at": row["created_at"],
        "last_edited_at": row["last_edited_at"],
        "dataset_hash": dataset["hash"],
        "dataset_title": dataset["title"],
        "data_title": unit["name"],
        "data_hash": unit["data_hash"],
        "data_type": lower,
        "label_status": row["label_status"],
        "annotation_task_status": row["task_status"],
        "object_answers": {},
        "classification_answers": {},
        "object_actions": {},
        "data_units": _data_units(store, unit, row),
        "spaces": spaces(store, unit),
    }
    return blob


def _data_units(store: Database, unit: sqlite3.Row, row: sqlite3.Row) -> dict[str, Any]:
    kind = unit["item_type"]
    base = {
        "data_hash": unit["data_hash"],
        "data_title": unit["name"],
        "data_type": unit["mime_type"] or kind,
        "data_sequence": 0,
        "data_link": unit["url"],
    }
    if kind == "imageGroup":
        frames = storage_models.children(store, unit["uuid"])
        return {frame["uuid"]: _frame_unit(frame, i) for i, frame in enumerate(frames)}
    if kind == "image":
        return {unit["data_hash"]: {**base, "width": unit["width"], "height": unit["height"],
                                    "labels": {"objects": [], "classifications": []}}}  # fmt: skip
    if kind in ("video", "imageSequence"):
        return {unit["data_hash"]: {**base, "data_type": unit["mime_type"] or "video/mp4", "width": unit["width"],
                                    "height": unit["height"], "data_fps": unit["fps"],
                                    "data_duration": unit["duration"], "labels": {}}}  # fmt: skip
    if kind == "audio":
        return {unit["data_hash"]: {**base, "audio_codec": unit["audio_codec"],
                                    "audio_sample_rate": unit["audio_sample_rate"],
                                    "audio_num_channels": unit["audio_num_channels"],
                                    "audio_bit_depth": unit["audio_bit_depth"], "labels": {}}}  # fmt: skip
    if kind == "dicomSeries":
        frames = storage_models.children(store, unit["uuid"])
        first = frames[0] if frames else unit
        slices = {
            str(i): {"objects": [], "classifications": [], "metadata": _slice_metadata(frame)}
            for i, frame in enumerate(frames)
        }
        return {unit["data_hash"]: {**base, "data_type": "application/dicom", "width": first["width"],
                                    "height": first["height"], "data_link": None, "labels": slices,
                                    "metadata": {"patient_id": None, "study_uid": unit["dicom_study_uid"],
                                                 "series_uid": unit["dicom_series_uid"]}}}  # fmt: skip
    if kind == "group":
        child_rows = {
            r["data_hash"]: r["label_hash"]
            for r in store.query(
                "SELECT data_hash, label_hash FROM label_rows WHERE project = ? AND branch_name = ?",
                (row["project"], row["branch_name"]),
            )
        }
        children = [
            {"data_hash": c["data_hash"], "label_hash": child_rows.get(c["data_hash"]), "name": c["name"],
             "layout_key": c["layout_key"]}
            for c in datasets.child_units(store, unit["data_hash"])
        ]  # fmt: skip
        return {unit["data_hash"]: {**base, "data_type": "group", "data_link": None, "labels": {},
                                    "metadata": {"children": children}}}  # fmt: skip
    return {unit["data_hash"]: {**base, "labels": {}}}  # plain text, PDF


def _slice_metadata(frame: sqlite3.Row) -> dict[str, Any]:
    """The SDK's ``DICOMSliceMetadata`` of one slice of a series (read as ``frame_view.metadata``)."""
    return {
        "dicom_instance_uid": frame["dicom_instance_uid"],
        "multiframe_frame_number": None,
        "file_uri": frame["url"] or f"encord://{frame['uuid']}",
        "width": frame["width"],
        "height": frame["height"],
    }


def _frame_unit(frame: sqlite3.Row, sequence: int) -> dict[str, Any]:
    return {
        "data_hash": frame["uuid"],
        "data_title": frame["name"],
        "data_type": frame["mime_type"],
        "data_sequence": sequence,
        "data_link": frame["url"],
        "width": frame["width"],
        "height": frame["height"],
        "labels": {"objects": [], "classifications": []},
    }
