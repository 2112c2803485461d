"""The deletion task against the sandbox: few calls, groups before members, idempotent re-runs, refusals, folders."""

from __future__ import annotations

import uuid
from pathlib import Path
from uuid import UUID

import pytest
from encord import EncordUserClient
from encord.orm.storage import DataGroupGrid
from encord.storage import StorageFolder
from encord_sandbox import Sandbox
from prefect import flow

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.tasks.deletion import DeletionResult, delete_items
from prefect_encord.testing import credentials_block
from tests.tasks.conftest import HttpLog


@pytest.fixture
def credentials(sandbox: Sandbox) -> EncordCredentials:
    return credentials_block(sandbox)


@pytest.fixture
def images(folder: StorageFolder, media_dir: Path) -> list[str]:
    return [str(folder.upload_image(media_dir / "red.png", title=f"img-{i}")) for i in range(5)]


def _remaining(folder: StorageFolder) -> list[str]:
    return sorted(str(i.uuid) for i in folder.list_items())


def test_groups_go_first_and_everything_takes_four_calls(
    credentials: EncordCredentials, folder: StorageFolder, images: list[str], http_log: HttpLog
) -> None:
    group = str(folder.create_data_group(DataGroupGrid(name="g", layout_contents=[UUID(u) for u in images[:2]])))
    http_log.api.clear()
    asked = [*images[:4], group]  # the group after its members, as a careless caller might list them

    result = delete_items.fn(credentials, asked)

    assert result == DeletionResult(deleted=asked)
    assert http_log.calls("POST", "/items/get-bulk") == 1
    assert http_log.calls("POST", "/items/delete") == 2  # groups, then the rest
    assert len(http_log.api) == 4, http_log.api  # + one folder lookup
    assert _remaining(folder) == [images[4]]


def test_a_rerun_counts_everything_as_already_deleted(
    credentials: EncordCredentials, folder: StorageFolder, images: list[str], http_log: HttpLog
) -> None:
    assert delete_items.fn(credentials, images[:3], folder_uuids=[folder.uuid]).deleted == images[:3]
    http_log.api.clear()

    again = delete_items.fn(credentials, images[:3], folder_uuids=[str(folder.uuid)])

    assert again == DeletionResult(already_deleted=images[:3])
    assert http_log.calls("POST", "/items/delete") == 0
    assert len(http_log.api) == 2  # the folder and one page of its items

    mixed = delete_items.fn(credentials, [images[0], images[3], images[1], images[4]])  # by UUID: halves find them
    assert (mixed.deleted, mixed.already_deleted) == ([images[3], images[4]], [images[0], images[1]])
    assert _remaining(folder) == []


def test_refused_items_are_reported_and_the_rest_deleted(
    credentials: EncordCredentials,
    folder: StorageFolder,
    images: list[str],
    other_client: EncordUserClient,
    media_dir: Path,
) -> None:
    group = folder.create_data_group(DataGroupGrid(name="keeps-0", layout_contents=[UUID(images[0])]))
    theirs = str(
        other_client.create_storage_folder(f"theirs-{uuid.uuid4().hex[:6]}").upload_image(media_dir / "red.png")
    )

    result = delete_items.fn(credentials, [images[0], images[1], "not-a-uuid", theirs, images[2]], batch_size=2)

    assert result.deleted == [images[1], images[2]]
    assert sorted(result.failed) == sorted([images[0], "not-a-uuid", theirs])
    assert f"member of data group {group} ('keeps-0')" in result.failed[images[0]]
    assert result.failed["not-a-uuid"] == "not a valid UUID"
    assert "no access" in result.failed[theirs]
    assert not result.ok
    assert _remaining(folder) == sorted([images[0], images[3], images[4], str(group)])


def test_emptied_folders_are_removed_in_any_order(
    credentials: EncordCredentials, client: EncordUserClient, media_dir: Path
) -> None:
    parent = client.create_storage_folder(f"run-{uuid.uuid4().hex[:6]}")
    child = parent.create_subfolder("cams")
    busy = client.create_storage_folder(f"shared-{uuid.uuid4().hex[:6]}")
    made = [str(child.upload_image(media_dir / "red.png")), str(busy.upload_image(media_dir / "blue.png"))]
    kept = str(busy.upload_image(media_dir / "green.jpg"))
    folders = [str(parent.uuid), str(child.uuid), str(busy.uuid)]

    result = delete_items.fn(credentials, made, remove_folders=folders)

    assert result.deleted == made
    assert result.folders_deleted == [str(child.uuid), str(parent.uuid)]
    assert list(result.folders_kept) == [str(busy.uuid)] and "not empty" in result.folders_kept[str(busy.uuid)]
    again = delete_items.fn(credentials, made, folder_uuids=[child.uuid, busy.uuid], remove_folders=folders[:2])
    assert (again.already_deleted, again.folders_already_deleted) == (made, folders[:2])
    assert [str(i.uuid) for i in busy.list_items()] == [kept]


def test_batch_size_is_checked(credentials: EncordCredentials) -> None:
    with pytest.raises(ValueError, match="batch_size 1001"):
        delete_items.fn(credentials, [], batch_size=1001)


def test_inside_a_flow(
    prefect_harness: None, credentials: EncordCredentials, folder: StorageFolder, images: list[str]
) -> None:
    @flow
    def rollback(items: list[str]) -> DeletionResult:
        return delete_items(credentials, items)

    result = rollback(images)
    assert result.deleted == images
    assert DeletionResult.model_validate_json(result.model_dump_json()) == result
    assert _remaining(folder) == []
