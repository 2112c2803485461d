"""Create data groups in a storage folder: grouped by a rule, laid out by a template, in batches, once per name.

Everything that can be wrong with a group (the template, a missing role, too many units) is found by
:mod:`prefect_encord.planning.layouts` before the first request. Groups are then created hundreds per
``create-group-items`` request. Encord validates a request as a whole, so if it still refuses one (an
item that is itself a group, or was deleted meanwhile), the batch is split in halves until the culprit
stands alone: the others are created, and only it is reported.

Idempotency is by group name within the folder: one listing of the folder's group items up front, and a
name already there is skipped (its existing UUID is returned).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from encord.exceptions import AuthorisationError, InvalidArgumentsError, ResourceNotFoundError
from encord.orm.storage import DataGroupInput, FoldersSortBy, StorageItemType
from encord.storage import StorageFolder
from prefect import task
from pydantic import BaseModel, Field

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.planning.grouping import GroupingRule, group_items, parse_rule
from prefect_encord.planning.layouts import LayoutTemplate, TemplateError, instantiate, parse_layout
from prefect_encord.runtime.run_logger import run_logger
from prefect_encord.tasks.isolation import send_isolating
from prefect_encord.tasks.lookups import open_folder

# Refusals that concern the groups sent rather than the caller or the service: worth isolating by bisection.
_REFUSALS = (InvalidArgumentsError, ResourceNotFoundError, AuthorisationError)


class DataGroupsResult(BaseModel):
    """What a run left in the folder, keyed by group name."""

    groups: dict[str, str] = Field(
        default_factory=dict, description="Every group now in the folder → its item UUID, new or already present."
    )
    skipped: list[str] = Field(default_factory=list, description="Groups whose name was already in the folder.")
    failed: dict[str, str] = Field(default_factory=dict, description="Groups that could not be created → why.")
    unmatched: list[str] = Field(default_factory=list, description="Items that no group of the rule claimed.")


@task
def create_data_groups(
    credentials: EncordCredentials,
    folder_uuid: str | UUID,
    items: Mapping[str, str | UUID],
    rule: GroupingRule | Mapping[str, Any],
    layout: LayoutTemplate | Mapping[str, Any],
    client_metadata: dict[str, Any] | None = None,
    batch_size: int = 500,
) -> DataGroupsResult:
    """Group ``items`` by ``rule`` and create each group in folder ``folder_uuid``, laid out by ``layout``.

    An invalid ``layout`` or ``rule`` raises before any request. A group that does not fit the layout, or
    that Encord refuses, is reported in ``failed`` and never stops the others.

    Args:
        credentials: Encord credentials block.
        folder_uuid: UUID of the storage folder holding the items; the groups are created there too.
        items: Source (file path, object URL …) → item UUID, e.g. ``UploadResult.items``.
        rule: A ``KeyPattern`` or ``Manifest``, or its dict form.
        layout: A ``GridLayout``, ``CarouselLayout``, ``CustomLayout`` or ``LayoutFile``, or its dict form.
        client_metadata: Client metadata for every group created.
        batch_size: Groups per create request.

    Returns:
        A :class:`DataGroupsResult`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size} must be at least 1")
    logger = run_logger(__name__)
    template, grouping = parse_layout(layout), group_items(items, parse_rule(rule))
    result = DataGroupsResult(failed=dict(grouping.problems), unmatched=grouping.unmatched)
    planned: dict[str, DataGroupInput] = {}
    for group in grouping.groups:
        try:
            planned[group.name] = instantiate(template, group, client_metadata)
        except TemplateError as exc:
            result.failed[group.name] = str(exc)

    storage_folder = open_folder(credentials.get_client(), folder_uuid)
    existing = _existing_groups(storage_folder)
    to_create = []
    for name, data_group in planned.items():
        if name in existing:
            result.groups[name] = existing[name]
            result.skipped.append(name)
        else:
            to_create.append((name, data_group))
    logger.info(
        "%d groups planned in folder %s: %d already there, %d to create, %d invalid, %d items unmatched",
        len(grouping.groups) + len(grouping.problems), folder_uuid, len(result.skipped), len(to_create),
        len(result.failed), len(result.unmatched),
    )  # fmt: skip
    for start in range(0, len(to_create), batch_size):
        _create(storage_folder, to_create[start : start + batch_size], result)
    logger.info(
        "data groups: %d created, %d already there, %d failed",
        len(result.groups) - len(result.skipped), len(result.skipped), len(result.failed),
    )  # fmt: skip
    return result


def _existing_groups(folder: StorageFolder) -> dict[str, str]:
    """Name → UUID of the folder's data groups (the oldest, if a name repeats), in one paged listing."""
    existing: dict[str, str] = {}
    listing = folder.list_items(
        item_types=[StorageItemType.GROUP],
        order=FoldersSortBy.CREATED_AT,
        page_size=1000,
        include_client_metadata=False,
    )
    for item in listing:
        existing.setdefault(item.name, str(item.uuid))
    return existing


def _create(folder: StorageFolder, batch: Sequence[tuple[str, DataGroupInput]], result: DataGroupsResult) -> None:
    """Create a batch in one request; if Encord refuses it, isolate the refused groups."""

    def send(part: Sequence[tuple[str, DataGroupInput]]) -> None:
        created = folder.create_data_groups([data_group for _, data_group in part])
        for (name, _), group_uuid in zip(part, created, strict=True):
            result.groups[name] = str(group_uuid)

    def refused(group: tuple[str, DataGroupInput], exc: Exception) -> None:
        result.failed[group[0]] = f"refused by Encord: {exc}"

    send_isolating(batch, send, _REFUSALS, refused)
