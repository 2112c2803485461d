"""Deleting items, data groups and folders: the unmodified SDK against the running sandbox.

The SDK's calls: ``StorageItem.delete()`` and ``StorageFolder.delete_storage_items()`` (both
``POST storage/folders/{folder}/items/delete`` with ``{"childUuids": [...], "removeUnusedFrames": b}``,
answered with the SDK's ``DeleteItemsResponse``) and ``StorageFolder.delete()`` (``DELETE
storage/folders/{folder}``, answered 204). The sandbox's rules: owner only; a group goes without its
members; a group member only with its groups; frames with their parent; dataset links and label rows
with the item; every call atomic.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_ssh_private_key
from encord import EncordUserClient
from encord.exceptions import AuthorisationError, InvalidArgumentsError, ResourceNotFoundError
from encord.http.v2.request_signer import sign_request
from encord.orm.dataset import DatasetType
from encord.orm.storage import DataGroupGrid, DeleteItemsPayload, DeleteItemsResponse, StorageItemType
from encord.storage import StorageFolder
from encord_sandbox.server import Sandbox


def _token() -> str:
    return uuid.uuid4().hex[:8]


def _signed(sandbox: Sandbox, method: str, path: str, body: Any = None) -> httpx.Response:
    """A raw v2 call signed with the admin key by the SDK's own signer, to read status and body as sent."""
    key = load_ssh_private_key(sandbox.private_key_path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    key_hex = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    prepared = sign_request(requests.Request(method, sandbox.domain + path, json=body).prepare(), key_hex, key)
    headers = {k: str(v) for k, v in prepared.headers.items() if k.lower() != "content-length"}
    body_sent = prepared.body or b""
    content = body_sent.encode() if isinstance(body_sent, str) else bytes(body_sent)  # type: ignore[arg-type]
    return httpx.request(method, prepared.url or "", content=content, headers=headers)


def _exists(client: EncordUserClient, item: UUID) -> bool:
    try:
        client.get_storage_item(item)
    except ResourceNotFoundError:
        return False
    return True


def _rows(sandbox: Sandbox, sql: str, *params: Any) -> int:
    return int(sandbox.backend.store.query(sql, params)[0][0])


@pytest.fixture
def images(folder: StorageFolder, media_dir: Path) -> list[UUID]:
    """Four uploaded images in the test's folder."""
    return [folder.upload_image(media_dir / "red.png", title=f"img-{i}") for i in range(4)]


def test_item_delete_and_bulk_delete(
    client: EncordUserClient, sandbox: Sandbox, folder: StorageFolder, images: list[UUID]
) -> None:
    blob = sandbox.backend.blobs.root / str(images[0])
    assert blob.exists()
    client.get_storage_item(images[0]).delete()
    assert not _exists(client, images[0])
    assert not blob.exists(), "an uploaded file nobody uses any more is removed from the blob store"

    folder.delete_storage_items([images[1], images[2], images[1]])  # a repeated UUID counts once
    assert [i.uuid for i in folder.list_items()] == [images[3]]

    response = client._api_client.post(  # the answer parses as the SDK's own DTO
        f"storage/folders/{folder.uuid}/items/delete",
        params=None,
        payload=DeleteItemsPayload(child_uuids=[images[3]], remove_unused_frames=True),
        result_type=DeleteItemsResponse,
    )
    assert (response.removed_items_count, response.removed_folders_count) == (1, 0)
    assert list(folder.list_items()) == []

    with pytest.raises(ResourceNotFoundError):  # deleting again: the item is gone
        folder.delete_storage_items([images[0]])


def test_only_the_owner_may_delete(
    client: EncordUserClient, other_client: EncordUserClient, folder: StorageFolder, images: list[UUID]
) -> None:
    theirs = other_client.create_storage_folder(f"theirs-{_token()}")
    with pytest.raises(AuthorisationError):  # through their own folder: not their item
        theirs.delete_storage_items([images[0]])
    with pytest.raises(AuthorisationError):  # through ours: not their folder
        other_client._api_client.post(
            f"storage/folders/{folder.uuid}/items/delete",
            params=None,
            payload=DeleteItemsPayload(child_uuids=[images[0]], remove_unused_frames=True),
            result_type=None,
        )
    with pytest.raises(AuthorisationError):
        other_client._api_client.delete(f"storage/folders/{folder.uuid}", params=None)
    assert _exists(client, images[0])
    client.get_storage_folder(folder.uuid)


def test_an_item_is_deleted_through_its_own_folder(
    client: EncordUserClient, sandbox: Sandbox, folder: StorageFolder, images: list[UUID]
) -> None:
    elsewhere = client.create_storage_folder(f"elsewhere-{_token()}")
    response = _signed(sandbox, "POST", f"/v2/public/storage/folders/{elsewhere.uuid}/items/delete",
                       {"childUuids": [str(images[0])], "removeUnusedFrames": True})  # fmt: skip
    assert response.status_code == 400
    assert f"not in folder {elsewhere.uuid}" in response.json()["message"]
    for body, problem in (
        ({"childUuids": []}, "childUuids must be a non-empty list"),
        ({"childUuids": ["nope"]}, "childUuids[0] 'nope' is not a valid UUID"),
        ({"childUuids": [str(images[0])], "removeUnusedFrames": "yes"}, "removeUnusedFrames"),
        ({"childUuids": [str(uuid.uuid4()) for _ in range(1001)]}, "the limit is 1000"),
    ):
        response = _signed(sandbox, "POST", f"/v2/public/storage/folders/{folder.uuid}/items/delete", body)
        assert (response.status_code, problem in response.json()["message"]) == (400, True), response.text
    assert _exists(client, images[0])


def test_a_group_goes_without_its_members_and_a_member_only_with_its_groups(
    client: EncordUserClient, sandbox: Sandbox, folder: StorageFolder, images: list[UUID]
) -> None:
    first = folder.create_data_group(DataGroupGrid(name="pair", layout_contents=images[:2]))
    second = folder.create_data_group(DataGroupGrid(name="trio", layout_contents=images[1:]))

    with pytest.raises(InvalidArgumentsError, match=rf"member of data group {first} \('pair'\)"):
        client.get_storage_item(images[0]).delete()
    response = _signed(sandbox, "POST", f"/v2/public/storage/folders/{folder.uuid}/items/delete",
                       {"childUuids": [str(images[1]), str(first)], "removeUnusedFrames": True})  # fmt: skip
    assert response.status_code == 400 and f"{second} ('trio')" in response.json()["message"]
    assert _exists(client, first), "a refused call deletes nothing"

    client.get_storage_item(first).delete()
    assert sorted(i.uuid for i in folder.list_items(item_types=[StorageItemType.IMAGE])) == sorted(images)
    assert _rows(sandbox, "SELECT count(*) FROM item_children WHERE parent = ?", str(first)) == 0
    client.get_storage_item(images[0]).delete()  # no longer in a group

    folder.delete_storage_items([images[2], second, images[1]])  # members with their group, in any order
    assert [i.uuid for i in folder.list_items()] == [images[3]]


def test_frames_go_with_their_parent(
    client: EncordUserClient, sandbox: Sandbox, folder: StorageFolder, media_dir: Path
) -> None:
    group = folder.create_image_group([media_dir / "red.png", media_dir / "blue.png"], title="ig")
    series = folder.create_dicom_series([media_dir / f"dicom/series-1/slice-{n}.dcm" for n in (1, 2, 3)], title="ct")
    frames = [f.uuid for f in client.get_storage_item(group).get_child_items()]
    assert len(frames) == 2

    with pytest.raises(InvalidArgumentsError, match=f"is a frame of item {group}"):
        folder.delete_storage_items([frames[0]])
    folder.delete_storage_items([group, frames[1]])  # a frame may come along with its parent
    assert _rows(sandbox, "SELECT count(*) FROM items WHERE uuid IN (?, ?, ?)", str(group), *map(str, frames)) == 0

    slices = [f.uuid for f in client.get_storage_item(series).get_child_items()]
    client.get_storage_item(series).delete(remove_unused_frames=False)
    kept = {i.uuid: i for i in folder.list_items()}
    assert sorted(kept) == sorted(slices), "without remove_unused_frames the slices stay, as standalone items"
    assert {i.item_type for i in kept.values()} == {StorageItemType.DICOM_FILE}
    folder.delete_storage_items(slices)
    assert list(folder.list_items()) == []


def test_linked_items_leave_their_datasets_with_their_label_rows(
    client: EncordUserClient, sandbox: Sandbox, folder: StorageFolder, images: list[UUID]
) -> None:
    group = folder.create_data_group(DataGroupGrid(name="grp", layout_contents=images[:2]))
    dataset_hash = client.create_dataset(f"del-{_token()}", DatasetType.CORD_STORAGE).dataset_hash
    client.get_dataset(dataset_hash).link_items([group, images[0], images[2]])
    project = client.get_project(client.create_project(f"del-{_token()}", [dataset_hash]))
    for row in project.list_label_rows_v2():
        row.initialise_labels()
        row.save()
    assert len(project.list_label_rows_v2()) == 3

    client.get_storage_item(group).delete()
    titles = sorted(r.title for r in client.get_dataset(dataset_hash).data_rows)
    assert titles == ["img-0", "img-2"]
    assert sorted(r.data_title for r in project.list_label_rows_v2()) == ["img-0", "img-2"]
    assert _rows(sandbox, "SELECT count(*) FROM data_units WHERE dataset = ?", dataset_hash) == 2, "child units too"

    client.get_storage_item(images[2]).delete()
    assert [r.data_title for r in project.list_label_rows_v2()] == ["img-0"]
    assert [r.title for r in client.get_dataset(dataset_hash).data_rows] == ["img-0"]


def test_a_bulk_deletion_is_all_or_nothing(client: EncordUserClient, folder: StorageFolder, images: list[UUID]) -> None:
    with pytest.raises(ResourceNotFoundError):
        folder.delete_storage_items([images[0], uuid.uuid4(), images[1]])
    folder.create_data_group(DataGroupGrid(name="holds-3", layout_contents=[images[3]]))
    with pytest.raises(InvalidArgumentsError, match="member of data group"):
        folder.delete_storage_items([images[0], images[3]])
    assert sorted(i.uuid for i in folder.list_items(item_types=[StorageItemType.IMAGE])) == sorted(images)


def test_only_an_empty_folder_is_deleted(client: EncordUserClient, sandbox: Sandbox, media_dir: Path) -> None:
    parent = client.create_storage_folder(f"parent-{_token()}")
    child = parent.create_subfolder("child")
    item = child.upload_image(media_dir / "red.png")
    reserved = _signed(
        sandbox,
        "POST",
        f"/v2/public/storage/folders/{child.uuid}/upload-signed-urls",
        {"itemType": "image", "count": 1},
    )  # an upload slot never used: it does not count
    assert reserved.status_code == 200

    with pytest.raises(InvalidArgumentsError, match="holds 0 items and 1 folders"):
        parent.delete()
    with pytest.raises(InvalidArgumentsError, match="holds 1 items and 0 folders"):
        child.delete()
    response = _signed(sandbox, "DELETE", f"/v2/public/storage/folders/{child.uuid}")
    assert response.status_code == 400

    child.delete_storage_items([item])
    child.delete()
    response = _signed(sandbox, "DELETE", f"/v2/public/storage/folders/{parent.uuid}")
    assert (response.status_code, response.content) == (204, b"")
    for gone in (child, parent):
        with pytest.raises(ResourceNotFoundError):
            client.get_storage_folder(gone.uuid)


def test_a_datasets_backing_folder_is_kept(client: EncordUserClient) -> None:
    created = client.create_dataset(f"backed-{_token()}", DatasetType.CORD_STORAGE, create_backing_folder=True)
    assert created.backing_folder_uuid is not None
    backing = client.get_storage_folder(created.backing_folder_uuid)
    with pytest.raises(InvalidArgumentsError, match=f"backing folder of dataset {created.dataset_hash}"):
        backing.delete()
