"""get_or_create_folder walks a path, creates only what is missing, and returns the same UUID every time."""

from __future__ import annotations

import uuid
from uuid import UUID

import pytest
from encord import EncordUserClient
from encord_sandbox.server import Sandbox

from prefect_encord.tasks.folders import folder_path_segments, get_or_create_folder
from prefect_encord.testing import credentials_block
from tests.tasks.conftest import HttpLog


def unique_root() -> str:
    return f"projects-{uuid.uuid4().hex[:8]}"


def test_creates_each_segment_and_returns_the_leaf(sandbox: Sandbox, client: EncordUserClient) -> None:
    root = unique_root()
    leaf_uuid = get_or_create_folder.fn(
        credentials_block(sandbox), f"{root}/2026/cams", description="camera feeds", client_metadata={"site": "north"}
    )
    leaf = client.get_storage_folder(UUID(leaf_uuid))
    assert (leaf.name, leaf.description, leaf.client_metadata) == ("cams", "camera feeds", {"site": "north"})
    parent = leaf.parent
    assert parent is not None and parent.name == "2026" and parent.description == ""
    assert parent.parent is not None and parent.parent.name == root and parent.parent.parent is None


def test_is_idempotent_and_leaves_existing_folders_unchanged(
    sandbox: Sandbox, client: EncordUserClient, http_log: HttpLog
) -> None:
    path = f"/{unique_root()}/2026/cams/"
    first = get_or_create_folder.fn(credentials_block(sandbox), path, description="first")
    http_log.api.clear()
    again = get_or_create_folder.fn(credentials_block(sandbox), path.strip("/"), description="second")
    assert again == first
    assert [method for method, _ in http_log.api] == ["GET", "GET", "GET"]  # one lookup per segment, no create
    assert client.get_storage_folder(UUID(first)).description == "first"


def test_only_the_missing_tail_is_created(sandbox: Sandbox, client: EncordUserClient) -> None:
    root = unique_root()
    middle = get_or_create_folder.fn(credentials_block(sandbox), f"{root}/2026")
    leaf = get_or_create_folder.fn(credentials_block(sandbox), f"{root}/2026/cams/front")
    assert client.get_storage_folder(UUID(leaf)).parent.parent.uuid == UUID(middle)  # type: ignore[union-attr]
    assert get_or_create_folder.fn(credentials_block(sandbox), f"{root}/2026") == middle


def test_exact_names_only_and_the_oldest_of_twins(sandbox: Sandbox, client: EncordUserClient) -> None:
    root = unique_root()
    client.create_storage_folder(f"{root}-suffix")  # a name search for root also finds this one
    older = client.create_storage_folder(root)
    client.create_storage_folder(root)
    assert get_or_create_folder.fn(credentials_block(sandbox), root) == str(older.uuid)


@pytest.mark.parametrize("path", ["", "/", "a//b", "a/ /b"])
def test_malformed_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="folder names separated"):
        folder_path_segments(path)
