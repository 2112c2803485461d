"""Get or create an Encord storage folder by its path, so flows can name folders instead of hard-coding UUIDs.

Encord folder names are not unique keys (two folders may share a name), so "create" alone would make a
new folder on every run. This walks the path one segment at a time, reusing the oldest folder of that
name under the parent and creating only what is missing: running it again returns the same UUID.

The SDK does not retry a folder create. Lookups are retried
(:func:`~prefect_encord.jobs.api_retries.call_with_retries`),
and a create that fails transiently is sent again only if the folder is still absent
(:func:`~prefect_encord.jobs.api_retries.create_once`): a create whose answer was lost never leaves a twin.
"""

from __future__ import annotations

from typing import Any

from encord import EncordUserClient
from encord.orm.storage import CloudSyncedFolderParams, FoldersSortBy
from encord.storage import StorageFolder
from prefect import task
from pydantic import BaseModel, Field

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.jobs.api_retries import call_with_retries, create_once
from prefect_encord.limits import MAX_PAGE_SIZE
from prefect_encord.planning.ids import is_utf8, printable
from prefect_encord.state.locks import exclusive


def folder_path_segments(path: str) -> list[str]:
    """The folder names of ``path`` (``"projects/2026/cams"``); outer slashes are ignored.

    Raises:
        ValueError: If the path is empty, has an empty segment (``"a//b"``), a ``.`` or ``..`` segment (Encord
            would make a folder of that name: paths are names, never resolved), a control character (NUL,
            newline…), or is not valid UTF-8 (a name read from a non-UTF-8 file system).
    """
    if not is_utf8(path):
        raise ValueError(f"folder path '{printable(path)}' is not valid UTF-8 (undecodable bytes shown as \\xNN)")
    segments = path.strip().strip("/").split("/")
    if any(not segment.strip() for segment in segments):
        raise ValueError(f"folder path {path!r} must be folder names separated by single '/'")
    for segment in segments:
        if segment.strip() in (".", ".."):
            raise ValueError(
                f"folder path {path!r} has the segment {segment!r}; folder paths are names, not resolved: "
                "write the path without it"
            )
        if any(ord(char) < 32 or ord(char) == 127 for char in segment):
            raise ValueError(f"folder path {path!r} has a control character in the segment {segment!r}")
    return segments


class FolderPath(BaseModel):
    """A storage folder found or created by path, and the folders of the path this call created (outer first)."""

    uuid: str
    created: list[str] = Field(default_factory=list, description="UUIDs of the folders created, outermost first.")


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
    call creates it. Encord offers no unique key, so two concurrent first runs could each create the folder;
    a lock on the path (:mod:`prefect_encord.state.locks`) makes the second wait and find the first's.

    Args:
        credentials: Encord credentials.
        path: Folder names from the top level down, separated by ``/``, e.g. ``"projects/2026/cams"``.
        description: Description of the last folder, if created.
        client_metadata: Client metadata of the last folder, if created.

    Returns:
        The folder's UUID, as a string.
    """
    return ensure_folder.fn(credentials, path, description, client_metadata).uuid


@task
def ensure_folder(
    credentials: EncordCredentials,
    path: str,
    description: str | None = None,
    client_metadata: dict[str, Any] | None = None,
    cloud_synced: CloudSyncedFolderParams | None = None,
) -> FolderPath:
    """:func:`get_or_create_folder`, also saying which folders of the path it created: what a run's receipt
    records, so that its rollback removes them (once empty). With ``cloud_synced``, the last folder is a
    cloud-synced folder bound to that integration and remote URL: created so, or found so.

    Raises:
        ValueError: If the last folder exists and is not cloud-synced with that remote URL (a folder's binding
            cannot change afterwards).
    """
    segments = folder_path_segments(path)
    client = credentials.get_client()
    parent: StorageFolder | None = None
    created: list[str] = []  # once a folder had to be created, none of its descendants can exist yet
    with exclusive(f"folder-path:{'/'.join(segments)}", f"folder {path}"):  # two first runs make one folder
        for depth, name in enumerate(segments):
            last = depth == len(segments) - 1
            found = None if created else _find_child(client, parent, name)
            if found is None:
                found = _create_child(client, parent, name, description if last else None,
                                      client_metadata if last else None, cloud_synced if last else None)  # fmt: skip
                created.append(str(found.uuid))
            elif last and cloud_synced is not None and found.remote_url != cloud_synced.remote_url:
                raise ValueError(
                    f"folder {path} exists and is not cloud-synced with {cloud_synced.remote_url} (it is "
                    f"{found.remote_url or 'an ordinary folder'}): choose another folder path"
                )
            parent = found
    assert parent is not None  # folder_path_segments returns at least one name
    return FolderPath(uuid=str(parent.uuid), created=created)


@task
def find_folder(credentials: EncordCredentials, path: str) -> str | None:
    """The UUID of the folder at ``path``, or None if it (or a folder above it) does not exist; creates nothing."""
    client = credentials.get_client()
    parent: StorageFolder | None = None
    for name in folder_path_segments(path):
        parent = _find_child(client, parent, name)
        if parent is None:
            return None
    return str(parent.uuid) if parent is not None else None


def _find_child(client: EncordUserClient, parent: StorageFolder | None, name: str) -> StorageFolder | None:
    """:func:`_child`, retried: a lookup only reads."""
    return call_with_retries(lambda: _child(client, parent, name), f"looking up {_where(name, parent)}")


def _create_child(
    client: EncordUserClient,
    parent: StorageFolder | None,
    name: str,
    description: str | None,
    client_metadata: dict[str, Any] | None,
    cloud_synced: CloudSyncedFolderParams | None = None,
) -> StorageFolder:
    """Create folder ``name`` under ``parent``, once: a lost answer is settled by looking the folder up."""
    return create_once(
        lambda: _child(client, parent, name),
        lambda: client.create_storage_folder(
            name,
            description=description,
            client_metadata=client_metadata,
            parent_folder=parent,
            cloud_synced_folder_params=cloud_synced,
        ),  # fmt: skip
        f"creating {_where(name, parent)}",
    )


def _where(name: str, parent: StorageFolder | None) -> str:
    """The folder for log lines: ``folder 'cams' under <uuid>`` or ``top-level folder 'cams'``."""
    return f"folder {name!r} under {parent.uuid}" if parent is not None else f"top-level folder {name!r}"


def _child(client: EncordUserClient, parent: StorageFolder | None, name: str) -> StorageFolder | None:
    """The oldest folder named exactly ``name`` directly under ``parent`` (the top level if None)."""
    if parent is None:
        candidates = client.list_storage_folders(search=name, order=FoldersSortBy.CREATED_AT, page_size=MAX_PAGE_SIZE)
    else:
        candidates = parent.list_subfolders(search=name, order=FoldersSortBy.CREATED_AT, page_size=MAX_PAGE_SIZE)
    return next((folder for folder in candidates if folder.name == name), None)
