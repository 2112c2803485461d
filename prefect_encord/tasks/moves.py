"""Move items into a folder, idempotently: what archiving an object's item, and restoring it, needs.

Archiving (``on_vanished="archive"``) moves the items of objects deleted from the bucket into an archive folder and
marks their units archived in the inventory; :func:`restore_archived` moves an item back when a listing finds its
object again, so a returning object never gets a second item.

Encord moves items that sit directly in one folder (``POST storage/folders/{folder}/items/move``,
``StorageFolder.move_items_to_folder``), all of a call or none. So each item's folder is looked up first (one bulk
read per 1,000), the items are moved from each folder they are in, and a refused batch is halved until the
culprit stands alone. Idempotent: an item already in the target counts as ``already_there``, one that no longer
exists as ``missing``; a re-run after a partial move finishes it. A move keeps the item's UUID, metadata and
dataset links with their labels (not a mirror dataset's: such an item is refused, not moved).

Requests: per 1,000 items, one bulk read and one move per source folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

from encord import EncordUserClient
from encord.exceptions import AuthorisationError, InvalidArgumentsError, ResourceNotFoundError
from encord.storage import StorageFolder

from prefect_encord.limits import MAX_BULK_ITEMS
from prefect_encord.planning.changes import Known
from prefect_encord.state.inventory import Inventory
from prefect_encord.tasks.isolation import send_isolating


@dataclass
class MoveResult:
    """What a move did with each item (UUIDs as strings)."""

    moved: list[str] = field(default_factory=list)
    already_there: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def in_place(self) -> list[str]:
        """Items that are in the target folder now."""
        return [*self.moved, *self.already_there]


def move_items(client: EncordUserClient, item_uuids: Sequence[str], target_folder: str) -> MoveResult:
    """Move ``item_uuids`` into ``target_folder`` from wherever each one is."""
    result = MoveResult()
    for start in range(0, len(item_uuids), MAX_BULK_ITEMS):
        by_folder = _locate(client, list(item_uuids[start : start + MAX_BULK_ITEMS]), result)
        result.already_there.extend(by_folder.pop(target_folder, []))
        for source, members in by_folder.items():
            _move_from(client.get_storage_folder(UUID(source)), members, UUID(target_folder), result)
    return result


def _locate(client: EncordUserClient, chunk: list[str], result: MoveResult) -> dict[str, list[str]]:
    """Each item's folder (one bulk read); an item that no longer exists is isolated into ``missing``."""
    by_folder: dict[str, list[str]] = {}

    def locate(part: Sequence[str]) -> None:
        for item in client.get_storage_items([UUID(u) for u in part]):
            by_folder.setdefault(str(item.parent_folder_uuid), []).append(str(item.uuid))

    send_isolating(chunk, locate, ResourceNotFoundError, lambda item, _: result.missing.append(item))
    return by_folder


def _move_from(folder: StorageFolder, members: list[str], target: UUID, result: MoveResult) -> None:
    """Move items of one folder in one call; a refused call is halved until the refused item stands alone."""

    def move(part: Sequence[str]) -> None:
        folder.move_items_to_folder(target, [UUID(u) for u in part])
        result.moved.extend(part)

    def refused(item: str, exc: Exception) -> None:
        result.failed[item] = str(exc)

    send_isolating(members, move, (InvalidArgumentsError, AuthorisationError, ResourceNotFoundError), refused)


@dataclass
class Restored:
    """Archived units whose objects are listed again: back in the folder (URL → their row, now live again), or
    not (URL → why); the others were deleted from Encord meanwhile and are registered anew."""

    back: dict[str, Known] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def restore_archived(
    client: EncordUserClient, inventory: Inventory, folder_uuid: str, urls: Sequence[str], run: str
) -> Restored:
    """Move the archived items of the objects ``urls`` back into ``folder_uuid`` (only those archived: a lookup in
    the inventory, no request otherwise) and make their units live again, as ``run`` saw them."""
    restored = Restored()
    archived = inventory.archived(urls)
    if not archived:
        return restored
    by_item = {known.item: url for url, (known, _) in archived.items()}
    moved = move_items(client, list(by_item), folder_uuid)
    back = [archived[by_item[item]][0] for item in moved.in_place]
    inventory.record(((k.url, k.key, k.fingerprint, k.item) for k in back), run)
    inventory.unarchive([*(k.url for k in back), *(by_item[item] for item in moved.missing)])
    restored.back = {k.url: k for k in back}
    restored.failed = {by_item[item]: f"its archived item {item} was not moved back: {why}"
                       for item, why in moved.failed.items()}  # fmt: skip
    return restored
