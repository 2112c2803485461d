"""Get or create an Encord storage folder by its path, so flows can name folders instead of hard-coding UUIDs.

Encord folder names are not unique keys (two folders may share a name), so "create" alone would make a
new folder on every run. This walks the path one segment at a time, reusing the oldest folder of that
name under the parent and creating only what is missing: running it again returns the same UUID.
"""

from __future__ import annotations

from typing import Any

from encord import EncordUserClient
from encord.orm.storage import FoldersSortBy
from encord.storage import StorageFolder
from prefect import task

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.planning.ids import is_utf8, printable

#: Folders per listing page; the most Encord serves, so a name search is usually one request.
_PAGE_SIZE = 1000


def folder_path_segments(path: str) -> list[str]:
    """The folder names of ``path`` (``"projects/2026/cams"``); outer slashes are ignored.

    Raises:
        ValueError: If the path is empty, has an empty segment (``"a//b"``), or is not valid UTF-8 (a name
            read from a non-UTF-8 file system).
    """
    if not is_utf8(path):
        raise ValueError(f"folder path '{printable(path)}' is not valid UTF-8 (undecodable bytes shown as \\xNN)")
    segments = path.strip().strip("/").split("/")
    if any(not segment.strip() for segment in segments):
        raise ValueError(f"folder path {path!r} must be folder names separated by single '/'")
    return segments


@task
def get_or_create_folder(
    credentials: EncordCredentials,
    path: str,
    description: str | None = None,
    client_metadata: dict[str, Any] | None = None,
) -> str:
    """The UUID of the storage folder at ``path``, creating any folders of the path that are missing.

    Idempotent: an existing folder is reused (the oldest, if several share the name) and returned
    unchanged. ``description`` and ``client_metadata`` are given to the last folder of the path when this
    call creates it. Two concurrent first runs can each create a folder: Encord offers no unique key.

    Args:
        credentials: Encord credentials.
        path: Folder names from the top level down, separated by ``/``, e.g. ``"projects/2026/cams"``.
        description: Description of the last folder, if created.
        client_metadata: Client metadata of the last folder, if created.

    Returns:
        The folder's UUID, as a string.
    """
    segments = folder_path_segments(path)
    client = credentials.get_client()
    parent: StorageFolder | None = None
    creating = False  # once a folder had to be created, none of its descendants can exist yet
    for depth, name in enumerate(segments):
        found = None if creating else _child(client, parent, name)
        if found is None:
            last = depth == len(segments) - 1
            found = client.create_storage_folder(
                name,
                description=description if last else None,
                client_metadata=client_metadata if last else None,
                parent_folder=parent,
            )
            creating = True
        parent = found
    assert parent is not None  # folder_path_segments returns at least one name
    return str(parent.uuid)


def _child(client: EncordUserClient, parent: StorageFolder | None, name: str) -> StorageFolder | None:
    """The oldest folder named exactly ``name`` directly under ``parent`` (the top level if None)."""
    if parent is None:
        candidates = client.list_storage_folders(search=name, order=FoldersSortBy.CREATED_AT, page_size=_PAGE_SIZE)
    else:
        candidates = parent.list_subfolders(search=name, order=FoldersSortBy.CREATED_AT, page_size=_PAGE_SIZE)
    return next((folder for folder in candidates if folder.name == name), None)
