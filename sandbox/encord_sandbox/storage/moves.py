"""Moving items between folders (``StorageFolder.move_items_to_folder``, ``StorageItem.move_to_folder``).

As Encord does: the items must be immediate children of the folder named in the path, all of them moved or none;
the frames of an image group, image sequence or DICOM series go with their parent. An item keeps its UUID, its
metadata, and its data units (with their labels) in every dataset, save a *mirror* dataset, one backed by the
folder it leaves: there the move is refused unless the caller allows it (``allowSyncedDatasetMove``), and then
its units leave that dataset (:data:`MIRRORED_ITEMS_LEAVING`, which datasets subscribe to).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from encord_sandbox.db import Database, chunked, now_iso
from encord_sandbox.errors import InvalidArgument, parse_uuid
from encord_sandbox.storage import models as storage_models

#: Published with the source folder's UUID before items leave it without leave to change a mirror dataset;
#: a hook refuses by raising.
ITEMS_LEAVING = "items.leaving"
#: Published with the UUIDs of items (frames included) leaving a folder with leave to change its mirror dataset.
MIRRORED_ITEMS_LEAVING = "items.leaving-mirror"


def move_items(
    store: Database, user: str, folder_uuid: str, item_uuids: Sequence[Any], target_uuid: Any, allow_mirror: bool
) -> list[str]:
    """Move items of ``folder_uuid`` into ``target_uuid`` atomically; returns the UUIDs moved (frames included).

    Every item must exist (404), be the caller's (403) and sit directly in the folder (400, naming it); a frame
    cannot move on its own (400). The target must be another folder of the caller's.
    """
    requested = list(dict.fromkeys(parse_uuid(u, f"itemUuids[{i}]") for i, u in enumerate(item_uuids)))
    if not requested:
        raise InvalidArgument("itemUuids must name at least one item")
    target = parse_uuid(target_uuid, "newParentUuid")
    with store.transaction() as db:
        source = storage_models.folder(store, user, folder_uuid)
        storage_models.folder(store, user, target)
        if target == source["uuid"]:
            raise InvalidArgument(f"the items are already in folder {target}")
        for item_uuid in requested:
            row = storage_models.item(store, user, item_uuid)
            if row["frame_of"] is not None:
                raise InvalidArgument(f"item {item_uuid} is a frame of {row['frame_of']}: move its parent")
            if row["folder"] != source["uuid"]:
                raise InvalidArgument(f"item {item_uuid} is not in folder {source['uuid']}")
        frames = [r["uuid"] for r in chunked(db, "SELECT uuid FROM items WHERE frame_of IN ({marks})", requested)]
        moving = sorted({*requested, *frames})
        if allow_mirror:
            store.cascades.publish(db, MIRRORED_ITEMS_LEAVING, moving)
        else:
            store.cascades.publish(db, ITEMS_LEAVING, [source["uuid"]])
        stamp = now_iso()
        for start in range(0, len(moving), 500):
            batch = moving[start : start + 500]
            marks = ",".join("?" * len(batch))
            db.execute(
                f"UPDATE items SET folder = ?, last_edited_at = ? WHERE uuid IN ({marks})",  # noqa: S608 - marks only
                (target, stamp, *batch),
            )
    return moving
