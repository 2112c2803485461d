"""Folders, items, their children and data groups: the storage area's tables and every rule about what may
be stored in them (``groups`` and ``metadata_schema`` are the pure checks it calls); the wire layer only
translates.

Deletion has its own module, :mod:`.deletion`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from encord_sandbox.db import Database, new_uuid, now_iso
from encord_sandbox.errors import Forbidden, InvalidArgument, NotFound, parse_uuid
from encord_sandbox.storage.groups import GroupPlan

DDL = """
CREATE TABLE IF NOT EXISTS folders (
    uuid TEXT PRIMARY KEY, parent TEXT, name TEXT NOT NULL, description TEXT NOT NULL,
    client_metadata TEXT, owner TEXT NOT NULL, created_at TEXT NOT NULL, last_edited_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS folders_parent ON folders(parent, name);
CREATE TABLE IF NOT EXISTS items (
    uuid TEXT PRIMARY KEY, folder TEXT NOT NULL, item_type TEXT NOT NULL, name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '', client_metadata TEXT NOT NULL DEFAULT '{}', owner TEXT NOT NULL,
    created_at TEXT NOT NULL, last_edited_at TEXT NOT NULL, is_placeholder INTEGER NOT NULL DEFAULT 0,
    frame_of TEXT, storage_location TEXT NOT NULL, integration_hash TEXT, url TEXT, blob_key TEXT,
    file_size INTEGER, mime_type TEXT, duration REAL, fps REAL, height INTEGER, width INTEGER,
    dicom_instance_uid TEXT, dicom_study_uid TEXT, dicom_series_uid TEXT, frame_count INTEGER,
    audio_sample_rate INTEGER, audio_bit_depth INTEGER, audio_codec TEXT, audio_num_channels INTEGER,
    num_pages INTEGER, layout TEXT);
CREATE INDEX IF NOT EXISTS items_folder ON items(folder, is_placeholder, frame_of, name);
CREATE INDEX IF NOT EXISTS items_url ON items(folder, url);
CREATE TABLE IF NOT EXISTS item_children (
    parent TEXT NOT NULL, position INTEGER NOT NULL, key TEXT NOT NULL, child TEXT NOT NULL,
    PRIMARY KEY (parent, position));
CREATE INDEX IF NOT EXISTS item_children_child ON item_children(child);
"""


ITEM_FACT_COLUMNS = [
    "file_size",
    "mime_type",
    "duration",
    "fps",
    "height",
    "width",
    "dicom_instance_uid",
    "dicom_study_uid",
    "dicom_series_uid",
    "frame_count",
    "audio_sample_rate",
    "audio_bit_depth",
    "audio_codec",
    "audio_num_channels",
    "num_pages",
]


@dataclass
class NewItem:
    """An item about to be stored; facts come from probing or the customer's provided metadata."""

    folder: str
    item_type: str
    name: str
    owner: str
    storage_location: str
    uuid: str = field(default_factory=new_uuid)
    client_metadata: dict[str, Any] = field(default_factory=dict)
    integration_hash: str | None = None
    url: str | None = None
    blob_key: str | None = None
    frame_of: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    layout: dict[str, Any] | None = None


def folder(store: Database, user: str, folder_uuid: str) -> sqlite3.Row:
    """A folder the user owns. Another user's folder is 403, a missing one 404 (as the SDK says)."""
    row = store.query_one("SELECT * FROM folders WHERE uuid = ?", (parse_uuid(folder_uuid, "folder"),))
    if row is None:
        raise NotFound(f"folder {folder_uuid} does not exist")
    if row["owner"] != user:
        raise Forbidden(f"you have no access to folder {folder_uuid}")
    return row


def create_folder(
    store: Database,
    user: str,
    name: str,
    description: str,
    client_metadata: str | None,
    parent: str | None,
    bind: Callable[[sqlite3.Connection, str], None] | None = None,
) -> str:
    """Create a folder; ``bind(db, folder_uuid)``, in the same transaction, makes it cloud-synced."""
    if not name or not name.strip():
        raise InvalidArgument(f"folder name {name!r} must not be empty")
    if client_metadata is not None:
        if not isinstance(client_metadata, str):
            raise InvalidArgument(f"folder clientMetadata must be a JSON string, got {client_metadata!r}")
        _json_object(client_metadata, "folder clientMetadata")
    if parent is not None:
        folder(store, user, parent)
    folder_uuid, stamp = new_uuid(), now_iso()
    with store.transaction() as db:
        db.execute(
            "INSERT INTO folders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (folder_uuid, parent, name, description, client_metadata, user, stamp, stamp),
        )
        if bind is not None:
            bind(db, folder_uuid)
    return folder_uuid


def list_folders(
    store: Database, user: str, parent: str | None, recursive: bool, search: str | None, order: str, desc: bool
) -> list[sqlite3.Row]:
    if parent is not None:
        folder(store, user, parent)
    rows = store.query("SELECT * FROM folders WHERE owner = ?", (user,))
    if parent is None and not recursive:
        rows = [r for r in rows if r["parent"] is None]
    elif parent is not None:
        allowed = _descendants(parent, rows) if recursive else {parent}
        rows = [r for r in rows if r["parent"] in allowed]
    if search:
        rows = [r for r in rows if search.lower() in r["name"].lower()]
    key = "created_at" if order == "createdAt" else "name"
    return sorted(rows, key=lambda r: (r[key], r["uuid"]), reverse=desc)


def _descendants(root: str, rows: list[sqlite3.Row]) -> set[str]:
    children: dict[str, list[str]] = {}
    for r in rows:
        children.setdefault(r["parent"], []).append(r["uuid"])
    found, frontier = {root}, [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def path_to_root(store: Database, folder_uuid: str) -> list[sqlite3.Row]:
    path: list[sqlite3.Row] = []
    current: str | None = folder_uuid
    while current is not None:
        row = store.query_one("SELECT * FROM folders WHERE uuid = ?", (current,))
        if row is None:
            break
        path.append(row)
        current = row["parent"]
    return path


def patch_folders(store: Database, user: str, patches: dict[str, dict[str, Any]]) -> list[str]:
    """Apply several folder patches atomically; all are validated before any is written."""
    checked = {}
    for raw_uuid, patch in patches.items():
        folder_uuid = folder(store, user, raw_uuid)["uuid"]
        if patch.get("name") is not None and (not isinstance(patch["name"], str) or not patch["name"].strip()):
            raise InvalidArgument(f"folder name {patch['name']!r} is not a non-empty string")
        metadata = patch.get("client_metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidArgument(f"folder clientMetadata must be an object, got {metadata!r}")
        checked[folder_uuid] = patch
    _apply_patches(store, "folders", checked)
    return list(checked)


def item(store: Database, user: str, item_uuid: str) -> sqlite3.Row:
    row = store.query_one("SELECT * FROM items WHERE uuid = ?", (parse_uuid(item_uuid, "item"),))
    if row is None or row["is_placeholder"]:
        raise NotFound(f"item {item_uuid} does not exist")
    if row["owner"] != user:
        raise Forbidden(f"you have no access to item {item_uuid}")
    return row


def item_in_folder(store: Database, user: str, folder_uuid: str, item_uuid: str) -> sqlite3.Row:
    owner_folder = folder(store, user, folder_uuid)
    row = item(store, user, item_uuid)
    if row["folder"] != owner_folder["uuid"]:
        raise NotFound(f"item {item_uuid} is not in folder {folder_uuid}")
    return row


def items(store: Database, user: str, item_uuids: Sequence[str]) -> list[sqlite3.Row]:
    return [item(store, user, u) for u in item_uuids]


def list_items(
    store: Database,
    user: str,
    folder_uuid: str,
    recursive: bool,
    search: str | None,
    item_types: Sequence[str],
    order: str,
    desc: bool,
    after: tuple[str, str] | None,
    limit: int,
) -> list[sqlite3.Row]:
    """One page of visible items (frames of image groups/DICOM series stay hidden, as in Encord)."""
    folder(store, user, folder_uuid)
    folders = [folder_uuid]
    if recursive:
        all_rows = store.query("SELECT uuid, parent FROM folders WHERE owner = ?", (user,))
        folders = sorted(_descendants(folder_uuid, all_rows))
    column = "created_at" if order == "createdAt" else "name"
    sql = [
        f"SELECT * FROM items WHERE folder IN ({','.join('?' * len(folders))})",
        "AND is_placeholder = 0 AND frame_of IS NULL",
    ]
    params: list[Any] = list(folders)
    if item_types:
        sql.append(f"AND item_type IN ({','.join('?' * len(item_types))})")
        params.extend(item_types)
    if search:
        sql.append("AND instr(lower(name), lower(?)) > 0")
        params.append(search)
    comparison = "<" if desc else ">"
    if after is not None:
        sql.append(f"AND ({column}, uuid) {comparison} (?, ?)")
        params.extend(after)
    direction = "DESC" if desc else "ASC"
    sql.append(f"ORDER BY {column} {direction}, uuid {direction} LIMIT ?")
    params.append(limit)
    return store.query(" ".join(sql), params)


def create_placeholders(store: Database, user: str, folder_uuid: str, item_type: str, count: int) -> list[str]:
    """Reserve item UUIDs for a local upload; they stay invisible until a job registers them."""
    folder_uuid = folder(store, user, folder_uuid)["uuid"]
    uuids = [new_uuid() for _ in range(count)]
    stamp = now_iso()
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO items (uuid, folder, item_type, name, owner, created_at, last_edited_at, "
            "is_placeholder, storage_location, blob_key) VALUES (?, ?, ?, '', ?, ?, ?, 1, 'encord', ?)",
            [(u, folder_uuid, item_type, user, stamp, stamp, u) for u in uuids],
        )
    return uuids


def placeholder(store: Database, folder_uuid: str, item_uuid: str) -> sqlite3.Row:
    row = store.query_one(
        "SELECT * FROM items WHERE uuid = ? AND folder = ? AND is_placeholder = 1",
        (parse_uuid(item_uuid, "placeholderItemUuid"), folder_uuid),
    )
    if row is None:
        raise NotFound(f"placeholder item {item_uuid} was not reserved in folder {folder_uuid}")
    return row


def insert_items(store: Database, db: sqlite3.Connection, items: Sequence[NewItem]) -> None:
    """Store items (or turn reserved placeholders into them) inside the caller's transaction."""
    stamp = now_iso()
    columns = [
        "uuid",
        "folder",
        "item_type",
        "name",
        "client_metadata",
        "owner",
        "created_at",
        "last_edited_at",
        "is_placeholder",
        "frame_of",
        "storage_location",
        "integration_hash",
        "url",
        "blob_key",
        "layout",
    ] + ITEM_FACT_COLUMNS
    sql = f"INSERT OR REPLACE INTO items ({','.join(columns)}) VALUES ({','.join('?' * len(columns))})"
    db.executemany(
        sql,
        [
            (
                i.uuid, i.folder, i.item_type, i.name, json.dumps(i.client_metadata), i.owner, stamp, stamp,
                0, i.frame_of, i.storage_location, i.integration_hash, i.url, i.blob_key,
                json.dumps(i.layout) if i.layout is not None else None,
                *(i.facts.get(c) for c in ITEM_FACT_COLUMNS),
            )
            for i in items
        ],
    )  # fmt: skip


def set_children(store: Database, db: sqlite3.Connection, parent: str, children: Sequence[tuple[str, str]]) -> None:
    db.executemany(
        "INSERT INTO item_children VALUES (?, ?, ?, ?)",
        [(parent, position, key, child) for position, (key, child) in enumerate(children)],
    )


def children(store: Database, parent: str) -> list[sqlite3.Row]:
    return store.query(
        "SELECT c.key, i.* FROM item_children c JOIN items i ON i.uuid = c.child "
        "WHERE c.parent = ? ORDER BY c.position",
        (parent,),
    )


def parents(store: Database, child: str) -> list[sqlite3.Row]:
    return store.query(
        "SELECT i.* FROM item_children c JOIN items i ON i.uuid = c.parent WHERE c.child = ? ORDER BY i.name",
        (child,),
    )


def patch_items(store: Database, user: str, patches: dict[str, dict[str, Any]], validate: Any) -> list[str]:
    """Apply item patches atomically. ``clientMetadata`` *replaces* the item's metadata.

    ``validate(item_uuid, metadata)`` checks metadata against the organisation's schema first,
    so one bad value rejects the whole call before anything is written.
    """
    checked = {}
    for raw_uuid, patch in patches.items():
        row = item(store, user, raw_uuid)
        if patch.get("name") is not None and (not isinstance(patch["name"], str) or not patch["name"].strip()):
            raise InvalidArgument(f"item name {patch['name']!r} is not a non-empty string")
        metadata = patch.get("client_metadata")
        if metadata is not None:
            if not isinstance(metadata, dict):
                raise InvalidArgument(f"clientMetadata of item {raw_uuid} must be an object, got {metadata!r}")
            validate(row["uuid"], metadata)
        checked[row["uuid"]] = patch
    _apply_patches(store, "items", checked)
    return list(checked)


def create_groups(store: Database, user: str, folder_uuid: str, plans: Sequence[GroupPlan]) -> list[str]:
    """Store validated data groups atomically; members must be the user's items and not groups."""
    folder_uuid = folder(store, user, folder_uuid)["uuid"]
    for index, plan in enumerate(plans):
        for key, child in plan.children:
            member = item(store, user, child)
            if member["item_type"] == "group":
                raise InvalidArgument(f"groups[{index}] key {key!r}: item {child} is itself a data group")
            if member["frame_of"] is not None:
                raise InvalidArgument(f"groups[{index}] key {key!r}: item {child} is a frame of another item")
    created = []
    with store.transaction() as db:
        for plan in plans:
            group = NewItem(
                folder=folder_uuid, item_type="group", owner=user, storage_location="encord",
                name=plan.name or "", client_metadata=plan.client_metadata, layout=plan.layout,
                facts={"frame_count": len(plan.children)},
            )  # fmt: skip
            if not group.name:
                group.name = f"data-group-{group.uuid[:8]}"
            insert_items(store, db, [group])
            set_children(store, db, group.uuid, plan.children)
            created.append(group.uuid)
    return created


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"{what} is not valid JSON: {text[:80]!r}") from exc
    if not isinstance(value, dict):
        raise InvalidArgument(f"{what} must be a JSON object, got {text[:80]!r}")
    return value


def _apply_patches(store: Database, table: str, patches: dict[str, dict[str, Any]]) -> None:
    """Write checked patches of folders or items (``table``) in one transaction: name, description, metadata."""
    with store.transaction() as db:
        for uuid, patch in patches.items():
            for column in ("name", "description"):
                if patch.get(column) is not None:
                    db.execute(f"UPDATE {table} SET {column} = ? WHERE uuid = ?", (patch[column], uuid))
            if patch.get("client_metadata") is not None:
                db.execute(
                    f"UPDATE {table} SET client_metadata = ? WHERE uuid = ?",
                    (json.dumps(patch["client_metadata"]), uuid),
                )
            db.execute(f"UPDATE {table} SET last_edited_at = ? WHERE uuid = ?", (now_iso(), uuid))
