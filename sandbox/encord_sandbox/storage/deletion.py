"""Deleting items and folders: every rule checked before anything goes, then one transaction.

Deleting an item publishes :data:`ITEMS_DELETED` (datasets remove its data units, labels their rows);
deleting a folder publishes :data:`FOLDER_DELETING`, which an area may refuse (a dataset's backing folder).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from encord_sandbox.db import Database, chunked, now_iso
from encord_sandbox.errors import Forbidden, InvalidArgument, NotFound, parse_uuid
from encord_sandbox.storage import models as storage_models

#: Published with the UUIDs of items (frames included) about to be deleted, inside the deleting transaction.
ITEMS_DELETED = "items.deleted"
#: Published with a folder's UUID before it is deleted; a hook refuses by raising.
FOLDER_DELETING = "folder.deleting"


@dataclass(frozen=True)
class Deletion:
    """What one item deletion removed: items (with frames), dataset links, label rows and unused blobs."""

    removed_items: list[str]
    kept_frames: list[str]
    data_units: list[str]
    label_rows: list[str]
    blob_keys: list[str]


def delete_items(
    store: Database, user: str, folder_uuid: str, item_uuids: Sequence[Any], remove_unused_frames: bool = True
) -> Deletion:
    """Delete items of one folder atomically (``POST folders/{uuid}/items/delete``); all rules first.

    Every item must exist (404), be the caller's (403) and sit directly in the folder (400). A frame
    of an image group, image sequence or DICOM series cannot be deleted on its own (400), but goes
    with its parent: removed with ``remove_unused_frames``, otherwise kept as a standalone item. A
    member of a data group is refused (400, naming the groups) unless its groups are deleted in the
    same call; deleting a group removes the group item, never its members. Data units linking a
    removed item into datasets (and a removed group's child units) go too, with their label rows.
    """
    requested = list(dict.fromkeys(parse_uuid(u, f"childUuids[{i}]") for i, u in enumerate(item_uuids)))
    if not requested:
        raise InvalidArgument("childUuids must name at least one item")
    with store.transaction() as db:
        folder = storage_models.folder(store, user, folder_uuid)
        rows = {u: _deletable(db, user, folder["uuid"], u) for u in requested}
        for item_uuid, row in rows.items():
            _check_not_held(db, item_uuid, row, set(rows))
        frames = [
            r
            for r in chunked(db, "SELECT uuid, blob_key FROM items WHERE frame_of IN ({marks})", requested)
            if r["uuid"] not in rows
        ]
        doomed = sorted(set(rows) | ({f["uuid"] for f in frames} if remove_unused_frames else set()))
        kept_frames = [] if remove_unused_frames else [f["uuid"] for f in frames]
        removed = store.cascades.publish(db, ITEMS_DELETED, doomed)
        blob_keys = {r["blob_key"] for r in [*rows.values(), *frames] if r["blob_key"] and r["uuid"] in doomed}
        for sql in (
            "DELETE FROM item_children WHERE parent IN ({marks})",
            "DELETE FROM item_children WHERE child IN ({marks})",
            "DELETE FROM items WHERE uuid IN ({marks})",
        ):
            chunked(db, sql, doomed)
        stamp = now_iso()
        db.executemany(
            "UPDATE items SET frame_of = NULL, last_edited_at = ? WHERE uuid = ?", [(stamp, u) for u in kept_frames]
        )
        used = chunked(db, "SELECT blob_key FROM items WHERE blob_key IN ({marks})", sorted(blob_keys))
    return Deletion(
        removed_items=doomed,
        kept_frames=kept_frames,
        data_units=sorted(removed.get("data_units", [])),
        label_rows=sorted(removed.get("label_rows", [])),
        blob_keys=sorted(blob_keys - {r["blob_key"] for r in used}),
    )


def _deletable(db: sqlite3.Connection, user: str, folder_uuid: str, item_uuid: str) -> sqlite3.Row:
    row = db.execute("SELECT * FROM items WHERE uuid = ?", (item_uuid,)).fetchone()
    if row is None or row["is_placeholder"]:
        raise NotFound(f"item {item_uuid} does not exist")
    if row["owner"] != user:
        raise Forbidden(f"you have no access to item {item_uuid}")
    if row["folder"] != folder_uuid:
        raise InvalidArgument(
            f"item {item_uuid} is not in folder {folder_uuid}; delete it through its folder {row['folder']}"
        )
    return row


def _check_not_held(db: sqlite3.Connection, item_uuid: str, row: sqlite3.Row, wanted: set[str]) -> None:
    """A frame goes only with its parent, a group member only with (or after) its groups."""
    if row["frame_of"] is not None and row["frame_of"] not in wanted:
        raise InvalidArgument(
            f"item {item_uuid} is a frame of item {row['frame_of']}; delete that item and its frames go with it"
        )
    groups = db.execute(
        "SELECT i.uuid, i.name FROM item_children c JOIN items i ON i.uuid = c.parent "
        "WHERE c.child = ? AND i.item_type = 'group' ORDER BY i.name",
        (item_uuid,),
    ).fetchall()
    holding = [f"{g['uuid']} ({g['name']!r})" for g in groups if g["uuid"] not in wanted]
    if holding:
        raise InvalidArgument(
            f"item {item_uuid} is a member of data group {', '.join(holding)}; "
            "delete the group first, or in the same call"
        )


def delete_folder(store: Database, user: str, folder_uuid: str) -> list[str]:
    """Delete an empty folder (``DELETE folders/{uuid}``); returns the blob keys of its unused upload slots.

    Only the owner may (403); a folder that still holds items or folders, backs a dataset or has an
    upload job running is refused (400) so nothing is ever deleted by surprise.
    """
    with store.transaction() as db:
        folder = storage_models.folder(store, user, folder_uuid)
        items = db.execute(
            "SELECT count(*) FROM items WHERE folder = ? AND is_placeholder = 0", (folder["uuid"],)
        ).fetchone()[0]
        subfolders = db.execute("SELECT count(*) FROM folders WHERE parent = ?", (folder["uuid"],)).fetchone()[0]
        if items or subfolders:
            raise InvalidArgument(
                f"folder {folder['uuid']} is not empty: it holds {items} items and {subfolders} folders; "
                "delete them first"
            )
        store.cascades.publish(db, FOLDER_DELETING, [folder["uuid"]])
        running = db.execute(
            "SELECT uuid FROM jobs WHERE folder = ? AND status = 'PENDING'", (folder["uuid"],)
        ).fetchone()
        if running is not None:
            raise InvalidArgument(f"folder {folder['uuid']} has upload job {running['uuid']} still running")
        slots = db.execute(
            "SELECT blob_key FROM items WHERE folder = ? AND is_placeholder = 1", (folder["uuid"],)
        ).fetchall()
        db.execute("DELETE FROM items WHERE folder = ? AND is_placeholder = 1", (folder["uuid"],))
        db.execute("DELETE FROM folders WHERE uuid = ?", (folder["uuid"],))
    return [r["blob_key"] for r in slots if r["blob_key"]]
