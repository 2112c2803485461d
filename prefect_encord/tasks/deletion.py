"""Delete storage items, data groups and emptied folders in bulk, idempotently: what a rollback needs.

Encord deletes items per folder (``POST storage/folders/{folder}/items/delete``, up to 1,000 items a
call), so the task first finds each item's folder and type, then deletes data groups before everything
else, one call per folder and batch: a member of a data group can only go once its groups are gone.
Items are found either by listing the folders the caller names (``folder_uuids``, e.g. from the run's
ledger: one call per 1,000 items in them, however many of the items are already gone), or by UUID in
bulk (one call per 1,000 items). In all, deleting up to 1,000 items of one folder takes four calls.

Idempotent: an item that no longer exists counts as ``already_deleted``, never as an error, so a
re-run after a partial failure finishes the job. Encord validates a call as a whole, so when it
refuses a batch (one item gone, one still in a data group that is not being deleted, one not the
caller's) the batch is split in halves until each culprit stands alone; every other item is deleted.
Without ``folder_uuids`` the bulk lookup is split the same way, which costs about two calls per
missing item: give the folders when re-running over items that may be gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

from encord import EncordUserClient
from encord.exceptions import AuthorisationError, InvalidArgumentsError, ResourceNotFoundError
from encord.orm.storage import StorageItemType
from encord.storage import StorageFolder
from prefect import task
from pydantic import BaseModel, Field

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.limits import MAX_BULK_ITEMS, MAX_PAGE_SIZE
from prefect_encord.runtime.run_logger import run_logger
from prefect_encord.tasks.isolation import send_isolating


class DeletionResult(BaseModel):
    """What a deletion did with every UUID it was given (UUIDs as strings, in the order given)."""

    deleted: list[str] = Field(default_factory=list, description="Items (and data groups) this run deleted.")
    already_deleted: list[str] = Field(
        default_factory=list, description="Items that no longer existed: deleted before, so nothing to do."
    )
    failed: dict[str, str] = Field(default_factory=dict, description="Items that could not be deleted → why.")
    folders_deleted: list[str] = Field(default_factory=list, description="Folders this run deleted.")
    folders_already_deleted: list[str] = Field(default_factory=list, description="Folders that no longer existed.")
    folders_kept: dict[str, str] = Field(
        default_factory=dict, description="Folders left in place (e.g. not empty) → why."
    )

    @property
    def ok(self) -> bool:
        """True when every item and folder asked for is gone."""
        return not self.failed and not self.folders_kept


@task
def delete_items(
    credentials: EncordCredentials,
    item_uuids: Sequence[str | UUID],
    folder_uuids: Sequence[str | UUID] = (),
    remove_folders: Sequence[str | UUID] = (),
    remove_unused_frames: bool = True,
    batch_size: int = MAX_BULK_ITEMS,
) -> DeletionResult:
    """Delete storage items and data groups in as few calls as Encord allows; then, optionally, folders.

    Deleting a data group removes the group, not its members. An item that is a member of a data group
    is refused (and reported in ``failed``) unless that group is deleted too, so pass the groups a run
    created along with its items. Deleting an item also removes it from every dataset it is linked to,
    with its label rows. Frames of image groups and DICOM series go with their parent.

    Args:
        credentials: Encord credentials block.
        item_uuids: Items and data groups to delete, in any order (groups are deleted first).
        folder_uuids: The folders that hold the items, if known: the items are found by listing them,
            and an item in none of them counts as already deleted. Otherwise items are looked up by UUID.
        remove_folders: Folders to delete once the items are gone (subfolders before or after their
            parents); a folder that still holds anything is kept and reported in ``folders_kept``.
        remove_unused_frames: Also remove the frames (images, DICOM files) of deleted image groups and
            DICOM series; otherwise they stay as standalone items.
        batch_size: Items per call, at most 1,000.

    Returns:
        A :class:`DeletionResult`.
    """
    if not 1 <= batch_size <= MAX_BULK_ITEMS:
        raise ValueError(f"batch_size {batch_size} must be from 1 to {MAX_BULK_ITEMS}")
    logger = run_logger(__name__)
    result = DeletionResult()
    uuids = _unique_uuids(item_uuids, result.failed)
    client = credentials.get_client()
    folders: dict[str, StorageFolder | None] = {}
    located: dict[str, tuple[str, bool]] = {}
    if folder_uuids:
        listed = _listed(client, _unique_uuids(folder_uuids, result.failed), folders)
        located = {u: listed[u] for u in uuids if u in listed}
        result.already_deleted.extend(u for u in uuids if u not in listed)
    else:
        for start in range(0, len(uuids), batch_size):
            _locate(client, uuids[start : start + batch_size], located, result)
    phases = [_by_folder(uuids, located, groups=True), _by_folder(uuids, located, groups=False)]
    logger.info("deleting %d items: %d found, in %d folders", len(uuids), len(located), len(phases[0] | phases[1]))

    for phase in phases:
        for folder, members in phase.items():
            storage_folder = _folder(client, folder, folders)
            if storage_folder is None:  # a folder is deleted only once empty: its items are gone too
                result.already_deleted.extend(members)
                continue
            for start in range(0, len(members), batch_size):
                _delete(storage_folder, members[start : start + batch_size], remove_unused_frames, result)

    _delete_folders(client, _unique_uuids(remove_folders, result.folders_kept), folders, result)
    result.deleted = _in_order(uuids, result.deleted)
    result.already_deleted = _in_order(uuids, result.already_deleted)
    logger.info(
        "deletion: %d deleted, %d already gone, %d failed; folders: %d deleted, %d already gone, %d kept",
        len(result.deleted), len(result.already_deleted), len(result.failed), len(result.folders_deleted),
        len(result.folders_already_deleted), len(result.folders_kept),
    )  # fmt: skip
    for item, reason in result.failed.items():
        logger.warning("item %s was not deleted: %s", item, reason)
    return result


def _unique_uuids(values: Iterable[str | UUID], failed: dict[str, str]) -> list[str]:
    """Canonical UUID strings, first occurrence kept; anything that is not a UUID goes to ``failed``."""
    seen: dict[str, None] = {}
    for value in values:
        try:
            seen.setdefault(str(UUID(str(value))), None)
        except ValueError:
            failed[str(value)] = "not a valid UUID"
    return list(seen)


def _locate(
    client: EncordUserClient, chunk: list[str], located: dict[str, tuple[str, bool]], result: DeletionResult
) -> None:
    """Folder and is-a-group of each item, one bulk read per chunk; missing items are isolated."""

    def send(part: Sequence[str]) -> None:
        for item in client.get_storage_items(list(part)):
            located[str(item.uuid)] = (str(item.parent_folder_uuid), item.item_type == StorageItemType.GROUP)

    def refused(item: str, exc: Exception) -> None:
        if isinstance(exc, ResourceNotFoundError):
            result.already_deleted.append(item)
        else:
            result.failed[item] = f"no access (or no such item): {_message(exc)}"

    send_isolating(chunk, send, (ResourceNotFoundError, AuthorisationError), refused)


def _listed(
    client: EncordUserClient, folder_uuids: list[str], cache: dict[str, StorageFolder | None]
) -> dict[str, tuple[str, bool]]:
    """Folder and is-a-group of every item in the folders (a folder that is gone holds nothing)."""
    found: dict[str, tuple[str, bool]] = {}
    for folder_uuid in folder_uuids:
        folder = _folder(client, folder_uuid, cache)
        if folder is None:
            continue
        for item in folder.list_items(page_size=MAX_PAGE_SIZE, include_client_metadata=False):
            found[str(item.uuid)] = (folder_uuid, item.item_type == StorageItemType.GROUP)
    return found


def _by_folder(uuids: list[str], located: dict[str, tuple[str, bool]], groups: bool) -> dict[str, list[str]]:
    phase: dict[str, list[str]] = {}
    for item in uuids:
        if item in located and located[item][1] == groups:
            phase.setdefault(located[item][0], []).append(item)
    return phase


def _folder(client: EncordUserClient, folder: str, cache: dict[str, StorageFolder | None]) -> StorageFolder | None:
    if folder not in cache:
        try:
            cache[folder] = client.get_storage_folder(UUID(folder))
        except ResourceNotFoundError:
            cache[folder] = None
    return cache[folder]


def _delete(folder: StorageFolder, chunk: list[str], remove_unused_frames: bool, result: DeletionResult) -> None:
    """Delete a chunk in one call; if Encord refuses it, isolate the refused items."""

    def send(part: Sequence[str]) -> None:
        folder.delete_storage_items([UUID(u) for u in part], remove_unused_frames=remove_unused_frames)
        result.deleted.extend(part)

    def refused(item: str, exc: Exception) -> None:
        if isinstance(exc, ResourceNotFoundError):
            result.already_deleted.append(item)
        else:
            result.failed[item] = f"refused by Encord: {_message(exc)}"

    send_isolating(chunk, send, (ResourceNotFoundError, InvalidArgumentsError, AuthorisationError), refused)


def _delete_folders(
    client: EncordUserClient, pending: list[str], cache: dict[str, StorageFolder | None], result: DeletionResult
) -> None:
    """Delete folders in rounds: a parent refused while its subfolder still existed is tried again."""
    while pending:
        refused: dict[str, str] = {}
        for folder_uuid in pending:
            try:
                folder = _folder(client, folder_uuid, cache)
                if folder is None:
                    result.folders_already_deleted.append(folder_uuid)
                    continue
                folder.delete()
            except ResourceNotFoundError:
                result.folders_already_deleted.append(folder_uuid)
            except (InvalidArgumentsError, AuthorisationError) as exc:
                refused[folder_uuid] = f"refused by Encord: {_message(exc)}"
            else:
                cache[folder_uuid] = None
                result.folders_deleted.append(folder_uuid)
        if len(refused) == len(pending):  # no progress: what is left stays
            result.folders_kept.update(refused)
            return
        pending = list(refused)


def _message(exc: Exception) -> str:
    """The server's message, without the SDK's request context (timestamp, trace id, domain)."""
    return str(getattr(exc, "message", None) or exc)


def _in_order(uuids: list[str], subset: list[str]) -> list[str]:
    members = set(subset)
    return [u for u in uuids if u in members]
