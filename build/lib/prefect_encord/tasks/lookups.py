"""Open the Encord folder or project a task names, with errors that say which one.

The SDK answers a v2 404 with "The requested resource was not found." and drops the server's message, so a
task given a wrong UUID would not say which of its arguments was wrong. These wrappers check the UUID first
(no request for a malformed one) and re-raise "not found" naming the resource, keeping the SDK's exception
type so callers that catch it still do. Neither costs a request beyond the SDK's own.
"""

from __future__ import annotations

from uuid import UUID

from encord import EncordUserClient, Project
from encord.exceptions import ResourceNotFoundError
from encord.storage import StorageFolder

from prefect_encord.planning.ids import as_uuid


def open_folder(client: EncordUserClient, folder_uuid: str | UUID, what: str = "folder_uuid") -> StorageFolder:
    """The storage folder ``folder_uuid``.

    Raises:
        ValueError: If ``folder_uuid`` is not a UUID (before any request).
        ResourceNotFoundError: If there is no such folder; the message names it.
    """
    wanted = as_uuid(folder_uuid, what)
    try:
        return client.get_storage_folder(wanted)
    except ResourceNotFoundError as exc:
        raise ResourceNotFoundError(f"storage folder {wanted} ({what}) does not exist", context=exc.context) from None


def open_project(client: EncordUserClient, project_hash: str | UUID, what: str = "project_hash") -> Project:
    """The project ``project_hash``.

    Raises:
        ValueError: If ``project_hash`` is not a UUID (before any request).
        ResourceNotFoundError: If there is no such project; the message names it.
    """
    wanted = str(as_uuid(project_hash, what))
    try:
        return client.get_project(wanted)
    except ResourceNotFoundError as exc:
        raise ResourceNotFoundError(f"project {wanted} ({what}) does not exist", context=exc.context) from None
