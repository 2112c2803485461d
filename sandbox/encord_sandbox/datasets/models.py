"""Datasets: storage items linked as data units, and the data rows the SDK reads back.

A data unit is one link of a storage item into a dataset, with its own ``data_hash``; its title,
type and media facts are read live from the item. Linking follows the SDK's duplicate behaviours:
``SKIP`` links only items not yet in the dataset (and returns the rows of *every* requested item,
old and new, so callers get all their data hashes back), ``FAIL`` refuses the whole call with
nothing linked if any item is already there, ``DUPLICATE`` makes a new data unit every time.
Linking a data group also links its members as hidden child units, so the group's label row can
name its children (``metadata.children``) with their own data hashes.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from encord_sandbox.db import Database, chunked, new_uuid, now_iso
from encord_sandbox.errors import Conflict, InvalidArgument, NotFound, parse_uuid
from encord_sandbox.organisation import access
from encord_sandbox.storage import deletion, moves
from encord_sandbox.storage import models as storage_models

DDL = """
CREATE TABLE IF NOT EXISTS datasets (
    hash TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT NOT NULL, owner TEXT NOT NULL,
    backing_folder TEXT, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS data_units (
    hash TEXT PRIMARY KEY, dataset TEXT NOT NULL, item_uuid TEXT NOT NULL, parent_unit TEXT,
    layout_key TEXT, created_at TEXT NOT NULL, last_edited_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS data_units_dataset ON data_units(dataset, parent_unit, item_uuid);
CREATE INDEX IF NOT EXISTS data_units_parent ON data_units(parent_unit);
"""

# storage item type → (DataRow data_type, label-row data_type)
DATA_TYPES = {
    "image": ("IMAGE", "image"),
    "video": ("VIDEO", "video"),
    "imageSequence": ("VIDEO", "video"),
    "imageGroup": ("IMG_GROUP", "img_group"),
    "plainText": ("PLAIN_TEXT", "plain_text"),
    "pdf": ("PDF", "pdf"),
    "audio": ("AUDIO", "audio"),
    "group": ("GROUP", "group"),
    "dicomSeries": ("DICOM", "dicom"),
    "nifti": ("NIFTI", "nifti"),
}
STORAGE_LOCATION_CODES = {"encord": 0, "directAccess": 0, "s3": 1, "gcp": 2, "azure": 3, "s3Compatible": 4}
DUPLICATE_BEHAVIOURS = ("SKIP", "FAIL", "DUPLICATE")

UNIT_COLUMNS = (
    "u.hash AS data_hash, u.dataset, u.parent_unit, u.layout_key, u.created_at AS unit_created_at, "
    "u.last_edited_at AS unit_last_edited_at, i.*"
)


#: Published with the hashes of data units about to be deleted (a unit's label rows go with it).
UNITS_DELETED = "data_units.deleted"


def register_cascades(store: Database) -> None:
    """Deleted items take their data units along; a dataset's backing folder cannot be deleted; items leave a
    mirror dataset (one backed by their folder) only when the mover allows it, and then their units go."""
    store.cascades.subscribe(deletion.ITEMS_DELETED, lambda db, items: _unlink_items(store, db, items))
    store.cascades.subscribe(deletion.FOLDER_DELETING, _refuse_backing_folder)
    store.cascades.subscribe(moves.ITEMS_LEAVING, _refuse_leaving_mirror)
    store.cascades.subscribe(moves.MIRRORED_ITEMS_LEAVING, lambda db, items: _leave_mirror(store, db, items))


def _unlink_items(store: Database, db: sqlite3.Connection, item_uuids: Sequence[str]) -> dict[str, list[str]]:
    """Remove the data units of deleted items (and the child units of deleted groups), with what hangs on them."""
    units = {r["hash"] for r in chunked(db, "SELECT hash FROM data_units WHERE item_uuid IN ({marks})", item_uuids)}
    units |= {
        r["hash"] for r in chunked(db, "SELECT hash FROM data_units WHERE parent_unit IN ({marks})", sorted(units))
    }
    unit_hashes = sorted(units)
    removed = {"data_units": unit_hashes, **store.cascades.publish(db, UNITS_DELETED, unit_hashes)}
    chunked(db, "DELETE FROM data_units WHERE hash IN ({marks})", unit_hashes)
    return removed


def _refuse_backing_folder(db: sqlite3.Connection, folders: Sequence[str]) -> dict[str, list[str]]:
    for folder in folders:
        backed = db.execute("SELECT hash FROM datasets WHERE backing_folder = ?", (folder,)).fetchone()
        if backed is not None:
            raise InvalidArgument(f"folder {folder} is the backing folder of dataset {backed['hash']}")
    return {}


def _refuse_leaving_mirror(db: sqlite3.Connection, folders: Sequence[str]) -> dict[str, list[str]]:
    for folder in folders:
        backed = db.execute("SELECT hash FROM datasets WHERE backing_folder = ?", (folder,)).fetchone()
        if backed is not None:
            raise InvalidArgument(
                f"folder {folder} backs the mirror dataset {backed['hash']}: moving its items removes them from "
                "that dataset; allow mirror dataset changes to move them"
            )
    return {}


def _leave_mirror(store: Database, db: sqlite3.Connection, item_uuids: Sequence[str]) -> dict[str, list[str]]:
    """Remove the units of moving items from the mirror dataset of the folder they leave, with their labels."""
    rows = chunked(
        db,
        "SELECT u.hash FROM data_units u JOIN items i ON i.uuid = u.item_uuid JOIN datasets d ON d.hash = u.dataset "
        "AND d.backing_folder = i.folder WHERE u.item_uuid IN ({marks})",
        item_uuids,
    )
    unit_hashes = sorted({r["hash"] for r in rows})
    removed = {"data_units": unit_hashes, **store.cascades.publish(db, UNITS_DELETED, unit_hashes)}
    chunked(db, "DELETE FROM data_units WHERE hash IN ({marks})", unit_hashes)
    return removed


def create(store: Database, user: str, title: Any, description: str, backing_folder: bool) -> tuple[str, str | None]:
    if not isinstance(title, str) or not title.strip():
        raise InvalidArgument(f"dataset title {title!r} must be a non-empty string")
    folder = (
        storage_models.create_folder(store, user, title, f"Backing folder of dataset {title}", None, None)
        if backing_folder
        else None
    )
    dataset_hash = new_uuid()
    with store.transaction() as db:
        db.execute(
            "INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?)",
            (dataset_hash, title, description or "", user, folder, now_iso()),
        )
    access.grant(store, "dataset", dataset_hash, user, access.DATASET_ADMIN)
    return dataset_hash, folder


def get(store: Database, dataset_hash: str) -> sqlite3.Row:
    row = store.query_one("SELECT * FROM datasets WHERE hash = ?", (dataset_hash,))
    if row is None:
        raise NotFound(f"dataset {dataset_hash} does not exist")
    return row


def list_for_user(store: Database, user: str, filters: TitleFilters) -> list[dict[str, Any]]:
    """``GET /datasets/list``: the datasets the user holds a role on, oldest first, as ``DatasetWithUserRole``.

    A dataset is *edited* when items are linked into it, so ``lastEditedAt`` is its newest data unit's
    creation (or its own creation while it is empty). Filters follow the SDK's
    ``DatasetsWithUserRolesListParams``: ``*_before`` is strict, ``*_after`` inclusive ("on or after").
    """
    rows = store.query(
        "SELECT d.*, r.role, COALESCE((SELECT MAX(u.created_at) FROM data_units u WHERE u.dataset = d.hash), "
        "d.created_at) AS edited_at FROM datasets d JOIN roles r ON r.resource_type = 'dataset' "
        "AND r.resource = d.hash AND r.user_id = ? ORDER BY d.created_at, d.hash",
        (user,),
    )
    return [
        {
            "datasetUuid": r["hash"],
            "title": r["title"],
            "description": r["description"],
            "createdAt": r["created_at"],
            "lastEditedAt": r["edited_at"],
            "userRole": "admin" if r["role"] == access.DATASET_ADMIN else "user",
            "storageLocation": STORAGE_LOCATION_CODES["encord"],
            "backingFolderUuid": r["backing_folder"],
        }
        for r in rows
        if filters.matches(r["title"], r["description"], r["created_at"], r["edited_at"])
    ]


@dataclass(frozen=True)
class TitleFilters:
    """The title, description and date filters shared by the dataset and project listings.

    Titles and descriptions match exactly (``*_eq``) or with SQL LIKE (``*_like``); dates compare as
    UTC ISO text, ``*_before`` strictly and ``*_after`` inclusively.
    """

    title_eq: str | None = None
    title_like: str | None = None
    description_eq: str | None = None
    description_like: str | None = None
    created_before: str | None = None
    created_after: str | None = None
    edited_before: str | None = None
    edited_after: str | None = None

    def matches(self, title: str, description: str, created_at: str, edited_at: str) -> bool:
        return (
            (self.title_eq is None or title == self.title_eq)
            and (self.title_like is None or like_matcher(self.title_like)(title))
            and (self.description_eq is None or description == self.description_eq)
            and (self.description_like is None or like_matcher(self.description_like)(description))
            and (self.created_before is None or created_at < normalise_time(self.created_before))
            and (self.created_after is None or created_at >= normalise_time(self.created_after))
            and (self.edited_before is None or edited_at < normalise_time(self.edited_before))
            and (self.edited_after is None or edited_at >= normalise_time(self.edited_after))
        )


def units(store: Database, dataset_hashes: Sequence[str], include_children: bool = False) -> list[sqlite3.Row]:
    """Data units (joined with their items) of some datasets, oldest first."""
    if not dataset_hashes:
        return []
    marks = ",".join("?" * len(dataset_hashes))
    children = "" if include_children else "AND u.parent_unit IS NULL"
    return store.query(
        f"SELECT {UNIT_COLUMNS} FROM data_units u JOIN items i ON i.uuid = u.item_uuid "
        f"WHERE u.dataset IN ({marks}) {children} ORDER BY u.created_at, u.hash",
        list(dataset_hashes),
    )


def unit(store: Database, data_hash: str) -> sqlite3.Row:
    row = store.query_one(
        f"SELECT {UNIT_COLUMNS} FROM data_units u JOIN items i ON i.uuid = u.item_uuid WHERE u.hash = ?",
        (data_hash,),
    )
    if row is None:
        raise NotFound(f"data unit {data_hash} does not exist")
    return row


def child_units(store: Database, data_hash: str) -> list[sqlite3.Row]:
    return store.query(
        f"SELECT {UNIT_COLUMNS} FROM data_units u JOIN items i ON i.uuid = u.item_uuid "
        "JOIN item_children c ON c.child = u.item_uuid AND c.parent = ("
        "  SELECT item_uuid FROM data_units WHERE hash = ?) "
        "WHERE u.parent_unit = ? ORDER BY c.position",
        (data_hash, data_hash),
    )


def link(store: Database, user: str, dataset_hash: str, item_uuids: Any, behaviour: str) -> list[sqlite3.Row]:
    """Link items; everything is checked before anything is written."""
    if behaviour not in DUPLICATE_BEHAVIOURS:
        raise InvalidArgument(f"duplicates_behavior {behaviour!r} is not one of {DUPLICATE_BEHAVIOURS}")
    if not isinstance(item_uuids, list) or not item_uuids:
        raise InvalidArgument("item_uuids must be a non-empty list")
    requested = list(dict.fromkeys(parse_uuid(u, "item") for u in item_uuids))
    items = storage_models.items(store, user, requested)
    for item in items:
        if item["frame_of"] is not None:
            raise InvalidArgument(f"item {item['uuid']} is a frame of item {item['frame_of']}; link its parent")
        if item["item_type"] not in DATA_TYPES:
            raise InvalidArgument(f"item {item['uuid']} of type {item['item_type']!r} cannot be linked")
    existing = {
        r["item_uuid"]: r["hash"]
        for r in store.query(
            f"SELECT item_uuid, hash FROM data_units WHERE dataset = ? AND parent_unit IS NULL "
            f"AND item_uuid IN ({','.join('?' * len(requested))})",
            [dataset_hash, *requested],
        )
    }
    if behaviour == "FAIL" and existing:
        raise Conflict(f"items already in dataset {dataset_hash}: {sorted(existing)}; nothing was linked")
    to_link = [i for i in items if behaviour == "DUPLICATE" or i["uuid"] not in existing]
    linked: dict[str, str] = {}
    stamp = now_iso()
    with store.transaction() as db:
        for item in to_link:
            linked[item["uuid"]] = data_hash = new_uuid()
            db.execute(
                "INSERT INTO data_units VALUES (?, ?, ?, NULL, NULL, ?, ?)",
                (data_hash, dataset_hash, item["uuid"], stamp, stamp),
            )
            if item["item_type"] == "group":
                db.executemany(
                    "INSERT INTO data_units VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (new_uuid(), dataset_hash, child["uuid"], data_hash, child["key"], stamp, stamp)
                        for child in storage_models.children(store, item["uuid"])
                    ],
                )
    hashes = [linked.get(u) or existing[u] for u in requested]
    return [unit(store, h) for h in hashes]


def filter_rows(rows: Sequence[sqlite3.Row], payload: dict[str, Any]) -> list[sqlite3.Row]:
    """``list_data_rows`` filters: title eq/like (SQL LIKE), created before/after, data types, hashes."""
    title_eq, title_like = payload.get("title_eq"), payload.get("title_like")
    before, after = payload.get("created_before"), payload.get("created_after")
    types, hashes = payload.get("data_types"), payload.get("data_hashes")
    pattern = like_matcher(title_like) if title_like else None
    return [
        r
        for r in rows
        if (title_eq is None or r["name"] == title_eq)
        and (pattern is None or pattern(r["name"]))
        and (before is None or r["unit_created_at"] < normalise_time(before))
        and (after is None or r["unit_created_at"] > normalise_time(after))
        and (types is None or DATA_TYPES[r["item_type"]][0] in types)
        and (hashes is None or r["data_hash"] in hashes)
    ]


def like_matcher(pattern: str) -> Callable[[str | None], bool]:
    """SQL LIKE semantics (``%`` any run, ``_`` one character, case-insensitive as in Postgres ILIKE)."""
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    compiled = re.compile(f"^{regex}$", re.IGNORECASE | re.DOTALL)
    return lambda value: compiled.match(value or "") is not None


def normalise_time(value: Any) -> str:
    """Filters arrive as ISO strings; compare them as UTC ISO text like the stored timestamps."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidArgument(f"{value!r} is not an ISO 8601 datetime") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).isoformat()
