"""Label rows: listing with the SDK's filters, initial skeletons per data type, fetch and save.

A project has one label row per top-level data unit of its datasets and per branch; until it is
created (``labelrow/PUT``) it is listed with ``label_hash: null``. The *initial* skeleton is the
hard part, because the SDK builds its objects from it: one data unit per frame for image groups
(with ``data_sequence``), video facts for videos, audio facts for audio, DICOM series metadata, and
for data groups the ``metadata.children`` plus ``spaces`` whose ids match the ones listed in the
row metadata. Saved blobs are stored as the SDK sent them and returned on fetch; a save moves the
row to ``LABELLED`` and advances ``last_edited_at`` so ``edited_after`` works as a watermark.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from encord_sandbox.datasets import models as datasets
from encord_sandbox.db import Database, chunked, new_uuid, now_iso
from encord_sandbox.errors import InvalidArgument, NotFound, SandboxError
from encord_sandbox.labels.responses import row_metadata, skeleton
from encord_sandbox.limits import MAX_ROWS_PER_CALL
from encord_sandbox.projects import models as projects

DDL = """
CREATE TABLE IF NOT EXISTS label_rows (
    label_hash TEXT PRIMARY KEY, project TEXT NOT NULL, data_hash TEXT NOT NULL, branch_name TEXT NOT NULL,
    label_status TEXT NOT NULL, task_status TEXT NOT NULL, stage TEXT NOT NULL, blob TEXT,
    created_at TEXT NOT NULL, last_edited_at TEXT NOT NULL, UNIQUE (project, data_hash, branch_name));
"""

MAIN_BRANCH = "main"
TASK_STATUSES = ("QUEUED", "ASSIGNED", "IN_REVIEW", "RETURNED", "COMPLETED")


class LabelLimitExceeded(SandboxError):
    """More rows than the SDK's bundle limit in one call; the SDK maps it to its own limit error.

    The SDK reads the limit from the envelope's payload (``payload.get("maximum_labels_allowed")``),
    so this error's payload is an object, not the usual message string.
    """

    status = 400
    v1_code = "MULTI_LABEL_LIMIT_ERROR"

    @property
    def v1_payload(self) -> dict[str, Any]:
        return {"maximum_labels_allowed": MAX_ROWS_PER_CALL, "message": self.message}


def register_cascades(store: Database) -> None:
    """A deleted data unit takes its label rows along."""
    store.cascades.subscribe(datasets.UNITS_DELETED, _delete_rows_of_units)


def _delete_rows_of_units(db: sqlite3.Connection, unit_hashes: Sequence[str]) -> dict[str, list[str]]:
    sql = "SELECT label_hash FROM label_rows WHERE data_hash IN ({marks})"
    label_rows = sorted(r["label_hash"] for r in chunked(db, sql, unit_hashes))
    chunked(db, "DELETE FROM label_rows WHERE data_hash IN ({marks})", unit_hashes)
    return {"label_rows": label_rows}


def check_limit(uids: Sequence[Any]) -> None:
    if len(uids) > MAX_ROWS_PER_CALL:
        raise LabelLimitExceeded(f"{len(uids)} label rows in one call; the maximum is {MAX_ROWS_PER_CALL}")


# --- listing ------------------------------------------------------------------------------------


def list_metadata(store: Database, project: sqlite3.Row, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """``labelrowmetadata/GET``: one row per data unit (per branch), filtered as the SDK asks."""
    branch = payload.get("branch_name")
    all_branches = bool(payload.get("include_all_label_branches"))
    if branch and all_branches:
        raise InvalidArgument("give either branch_name or include_all_label_branches, not both")
    branch = branch or MAIN_BRANCH
    include_children = bool(payload.get("include_children"))
    dataset_rows = {r["hash"]: r for r in _datasets_of(store, project["hash"])}
    units = datasets.units(store, list(dataset_rows), include_children=include_children)
    saved = _rows_by_unit(store, project["hash"])
    stage_titles = {s["title"]: s for s in projects.stages(project)}
    results = []
    for unit in units:
        rows_here = saved.get(unit["data_hash"], {})
        branches = sorted(rows_here) if all_branches else [branch]
        for name in branches or [MAIN_BRANCH]:
            results.append(row_metadata(store, unit, dataset_rows[unit["dataset"]], rows_here.get(name), name,
                                     stage_titles, payload))  # fmt: skip
    return [r for r in results if _matches(r, payload)]


def _datasets_of(store: Database, project_hash: str) -> list[sqlite3.Row]:
    return store.query(
        "SELECT d.* FROM project_datasets p JOIN datasets d ON d.hash = p.dataset WHERE p.project = ?", (project_hash,)
    )


def _rows_by_unit(store: Database, project_hash: str) -> dict[str, dict[str, sqlite3.Row]]:
    result: dict[str, dict[str, sqlite3.Row]] = {}
    for row in store.query("SELECT * FROM label_rows WHERE project = ?", (project_hash,)):
        result.setdefault(row["data_hash"], {})[row["branch_name"]] = row
    return result


def _matches(row: dict[str, Any], payload: dict[str, Any]) -> bool:
    """The SDK's filters; title and node ``like`` filters use SQL LIKE semantics."""
    checks = [
        ("data_hashes", lambda v: row["data_hash"] in v),
        ("label_hashes", lambda v: row["label_hash"] in v),
        ("edited_before", lambda v: row["last_edited_at"] is not None
         and row["last_edited_at"] < datasets.normalise_time(v)),
        ("edited_after", lambda v: row["last_edited_at"] is not None
         and row["last_edited_at"] > datasets.normalise_time(v)),
        ("label_statuses", lambda v: row["annotation_task_status"] in v),
        ("data_title_eq", lambda v: row["data_title"] == v),
        ("data_title_like", lambda v: datasets.like_matcher(v)(row["data_title"])),
        ("workflow_graph_node_title_eq", lambda v: (row.get("workflow_graph_node") or {}).get("title") == v),
        ("workflow_graph_node_title_like",
         lambda v: datasets.like_matcher(v)((row.get("workflow_graph_node") or {}).get("title"))),
    ]  # fmt: skip
    if not payload.get("include_uninitialised_labels", False) and row["label_hash"] is None:
        return False
    return all(payload.get(key) is None or check(payload[key]) for key, check in checks)


# --- spaces and skeletons -----------------------------------------------------------------------


# --- create, fetch, save ------------------------------------------------------------------------


def create(
    store: Database, project: sqlite3.Row, data_hashes: Sequence[str], branch: str | None
) -> list[dict[str, Any]]:
    """``labelrow/PUT``: create rows for data units of the project (an existing row is returned as is)."""
    check_limit(data_hashes)
    branch = branch or MAIN_BRANCH
    attached = set(projects.dataset_hashes(store, project["hash"]))
    units = []
    for data_hash in data_hashes:
        unit = datasets.unit(store, str(data_hash))
        if unit["dataset"] not in attached:
            raise NotFound(f"data unit {data_hash} is not in project {project['hash']}")
        units.append(unit)
    stamp = now_iso()
    with store.transaction() as db:
        db.executemany(
            "INSERT OR IGNORE INTO label_rows "
            "VALUES (?, ?, ?, ?, 'LABEL_IN_PROGRESS', 'QUEUED', 'Annotate', NULL, ?, ?)",
            [(new_uuid(), project["hash"], u["data_hash"], branch, stamp, stamp) for u in units],
        )
    return [_blob(store, project, _row(store, project["hash"], u["data_hash"], branch)) for u in units]


def fetch(store: Database, project: sqlite3.Row, label_hashes: Sequence[str]) -> list[dict[str, Any]]:
    check_limit(label_hashes)
    return [_blob(store, project, _row_by_hash(store, project["hash"], str(h))) for h in label_hashes]


def save(store: Database, project: sqlite3.Row, label_hashes: Sequence[str], blobs: Any) -> None:
    """Store blobs exactly as the SDK sent them; all rows are checked before any is written."""
    check_limit(label_hashes)
    if not isinstance(blobs, list) or len(blobs) != len(label_hashes):
        raise InvalidArgument(
            f"{len(label_hashes)} label hashes but {len(blobs) if isinstance(blobs, list) else 0} labels"
        )
    rows = [_row_by_hash(store, project["hash"], str(h)) for h in label_hashes]
    for row, blob in zip(rows, blobs, strict=True):
        if not isinstance(blob, dict) or blob.get("label_hash") not in (None, row["label_hash"]):
            raise InvalidArgument(f"label blob for {row['label_hash']} names another label row")
    stamp = now_iso()
    with store.transaction() as db:
        for row, blob in zip(rows, blobs, strict=True):
            db.execute(
                "UPDATE label_rows SET blob = ?, label_status = 'LABELLED', last_edited_at = ? WHERE label_hash = ?",
                (json.dumps(blob), stamp, row["label_hash"]),
            )


def _row(store: Database, project_hash: str, data_hash: str, branch: str) -> sqlite3.Row:
    row = store.query_one(
        "SELECT * FROM label_rows WHERE project = ? AND data_hash = ? AND branch_name = ?",
        (project_hash, data_hash, branch),
    )
    assert row is not None
    return row


def _row_by_hash(store: Database, project_hash: str, label_hash: str) -> sqlite3.Row:
    row = store.query_one("SELECT * FROM label_rows WHERE label_hash = ? AND project = ?", (label_hash, project_hash))
    if row is None:
        raise NotFound(f"label row {label_hash} does not exist in project {project_hash}")
    return row


def _blob(store: Database, project: sqlite3.Row, row: sqlite3.Row) -> dict[str, Any]:
    unit = datasets.unit(store, row["data_hash"])
    dataset = datasets.get(store, unit["dataset"])
    current = skeleton(store, unit, dataset, row)
    if row["blob"] is None:
        return current
    saved = json.loads(row["blob"])
    # The saved labels are the SDK's; the row's identity and status are the server's.
    for key in ("label_hash", "branch_name", "created_at", "last_edited_at", "label_status", "data_hash",
                "dataset_hash", "dataset_title", "annotation_task_status"):  # fmt: skip
        saved[key] = current[key]
    saved.setdefault("data_units", current["data_units"])
    saved.setdefault("spaces", current["spaces"])
    _restore_server_metadata(saved["data_units"], current["data_units"])
    return saved


def _restore_server_metadata(saved_units: Any, current_units: dict[str, Any]) -> None:
    """Put back the server-owned metadata the SDK leaves out when it saves.

    ``to_encord_dict`` writes neither a unit's ``metadata`` (DICOM series facts, data-group
    children) nor per-slice DICOM metadata of frames without objects, yet the SDK reads both on
    every initialise; the server owns them, so they come from the current skeleton on each fetch.
    """
    if not isinstance(saved_units, dict):
        return
    for key, current in current_units.items():
        saved = saved_units.get(key)
        if not isinstance(saved, dict):
            continue
        if "metadata" in current:
            saved["metadata"] = current["metadata"]
        labels = saved.get("labels")
        if not isinstance(labels, dict):
            continue
        for frame, frame_labels in current.get("labels", {}).items():
            if isinstance(frame_labels, dict) and "metadata" in frame_labels:
                entry = labels.setdefault(frame, {"objects": [], "classifications": []})
                if isinstance(entry, dict):
                    entry["metadata"] = frame_labels["metadata"]


def workflow_action(store: Database, project: sqlite3.Row, label_hashes: Sequence[str], action: str) -> None:
    """``complete`` moves rows to the Complete stage; ``reopen`` sends them back to Annotate."""
    if action not in ("complete", "reopen"):
        raise InvalidArgument(f"workflow action {action!r} is not 'complete' or 'reopen'")
    rows = [_row_by_hash(store, project["hash"], str(h)) for h in label_hashes]
    stage, status = ("Complete", "COMPLETED") if action == "complete" else ("Annotate", "QUEUED")
    stamp = now_iso()
    with store.transaction() as db:
        db.executemany(
            "UPDATE label_rows SET stage = ?, task_status = ?, last_edited_at = ? WHERE label_hash = ?",
            [(stage, status, stamp, r["label_hash"]) for r in rows],
        )
