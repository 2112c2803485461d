"""Moving items between folders: the unmodified SDK's ``move_items_to_folder`` and ``move_to_folder`` against the
sandbox over HTTP. An item keeps its UUID, metadata and dataset links; all move or none; a mirror dataset's
items move only when allowed, and then leave that dataset."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from encord import EncordUserClient
from encord.exceptions import InvalidArgumentsError
from encord.orm.dataset import DatasetType
from encord.storage import StorageFolder, StorageItem


def _image(folder: StorageFolder, media_dir: Path, name: str, **metadata: object) -> StorageItem:
    item_uuid = folder.upload_image(media_dir / "red.png", title=name, client_metadata=dict(metadata) or None)
    return StorageItem._get_item(folder._api_client, item_uuid, get_signed_url=False)


def test_items_move_whole_keeping_their_uuid_metadata_and_links(
    client: EncordUserClient, folder: StorageFolder, media_dir: Path
) -> None:
    archive = folder.create_subfolder(f"archive-{uuid.uuid4().hex[:6]}")
    first, second, stays = (_image(folder, media_dir, name, n=i) for i, name in enumerate(("a", "b", "c")))
    dataset = client.create_dataset(f"moves-{uuid.uuid4().hex[:6]}", DatasetType.CORD_STORAGE,
                                    create_backing_folder=False)  # fmt: skip
    client.get_dataset(dataset.dataset_hash).link_items([first.uuid])

    folder.move_items_to_folder(archive, [first.uuid, second])

    assert sorted(i.name for i in archive.list_items()) == ["a", "b"]
    assert [i.name for i in folder.list_items()] == ["c"] and stays.uuid
    moved = client.get_storage_item(first.uuid)
    assert moved.parent_folder_uuid == archive.uuid and moved.client_metadata == {"n": 0}
    assert [row.backing_item_uuid for row in client.get_dataset(dataset.dataset_hash).data_rows] == [first.uuid]

    moved.move_to_folder(folder)  # and back, one at a time
    assert moved.parent_folder_uuid == folder.uuid and sorted(i.name for i in folder.list_items()) == ["a", "c"]


def test_a_move_with_one_item_elsewhere_moves_none(folder: StorageFolder, media_dir: Path) -> None:
    other = folder.create_subfolder(f"other-{uuid.uuid4().hex[:6]}")
    here, there = _image(folder, media_dir, "here"), _image(other, media_dir, "there")
    with pytest.raises(InvalidArgumentsError, match=f"item {there.uuid} is not in folder {folder.uuid}"):
        folder.move_items_to_folder(other, [here.uuid, there.uuid])
    assert [i.name for i in folder.list_items()] == ["here"]
    with pytest.raises(InvalidArgumentsError, match="already in folder"):
        folder.move_items_to_folder(folder, [here.uuid])


def test_a_mirror_datasets_items_move_only_when_allowed_and_then_leave_it(
    client: EncordUserClient, media_dir: Path
) -> None:
    created = client.create_dataset(f"mirror-{uuid.uuid4().hex[:6]}", DatasetType.CORD_STORAGE)
    assert created.backing_folder_uuid is not None
    backing = client.get_storage_folder(created.backing_folder_uuid)
    item = _image(backing, media_dir, "mirrored")
    client.get_dataset(created.dataset_hash).link_items([item.uuid])
    elsewhere = client.create_storage_folder(f"elsewhere-{uuid.uuid4().hex[:6]}")

    with pytest.raises(InvalidArgumentsError, match="backs the mirror dataset"):
        backing.move_items_to_folder(elsewhere, [item.uuid])
    assert len(client.get_dataset(created.dataset_hash).data_rows) == 1

    backing.move_items_to_folder(elsewhere, [item.uuid], allow_mirror_dataset_changes=True)
    assert client.get_dataset(created.dataset_hash).data_rows == []
    assert [i.uuid for i in elsewhere.list_items()] == [item.uuid]
