"""Datasets: get or create one by title, and link storage items into it (by list, folder or item type).

A dataset is how storage items reach annotation: each link makes a data unit that projects label.
Linking is planned against the dataset's current rows (see :mod:`prefect_encord.planning.links`), so
the result tells new links from items that were already there, a ``SKIP`` re-run sends no request
that changes anything, and a ``FAIL`` that must fail does so before linking anything.

Requests to Encord: one to read the dataset's rows, then one ``link_items`` per 1,000 items; linking a
folder adds one listing request per 1,000 items. If Encord refuses a bundle (an item that is a frame,
deleted, or not the caller's), the bundle is split in halves until the refused items stand alone: the
rest are linked, and only those are reported as failed. ``link_items`` is not retried by the SDK, but
with ``SKIP`` retrying the whole task is safe: already-linked items are simply found present.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from encord import EncordUserClient
from encord.dataset import Dataset
from encord.exceptions import (
    AuthorisationError,
    InvalidArgumentsError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from encord.orm.dataset import DataLinkDuplicatesBehavior, DatasetType
from encord.orm.storage import FoldersSortBy, StorageItemType
from prefect import task
from pydantic import BaseModel, Field

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.planning.links import (
    LINK_BUNDLE_SIZE,
    DuplicateBehaviour,
    normalise_item_uuid,
    parse_item_types,
    plan_links,
    sdk_behaviour,
)
from prefect_encord.planning.titles import single_match
from prefect_encord.tasks.isolation import send_isolating
from prefect_encord.tasks.lookups import open_folder
from prefect_encord.tasks.run_logger import run_logger

# Refusals that concern the items sent rather than the caller or the service: worth isolating by bisection.
_REFUSALS = (InvalidArgumentsError, ResourceNotFoundError, AuthorisationError, ResourceExistsError)
#: Items per folder listing page, the most Encord serves.
_LISTING_PAGE_SIZE = 1000


class DatasetRef(BaseModel):
    """A dataset found or created by title."""

    dataset_hash: str
    title: str
    created: bool = Field(description="True if this call created the dataset, False if it already existed.")


class LinkResult(BaseModel):
    """What a link call left in the dataset, keyed by storage item UUID."""

    dataset_hash: str
    linked: dict[str, str] = Field(default_factory=dict, description="Items linked by this call → new data hash.")
    already_present: dict[str, str] = Field(
        default_factory=dict, description="Items that were already in the dataset → their data hash (SKIP)."
    )
    failed: dict[str, str] = Field(default_factory=dict, description="Items Encord refused → why.")

    @property
    def data_hashes(self) -> dict[str, str]:
        """Every requested item now in the dataset → its data hash, new or already present."""
        return {**self.already_present, **self.linked}


@task
def get_or_create_dataset(credentials: EncordCredentials, title: str, description: str | None = None) -> DatasetRef:
    """The dataset titled exactly ``title``, created (without a backing folder) if there is none.

    Idempotent: a second run finds the first run's dataset. The dataset is made without a mirrored
    backing folder, because its items are linked from storage folders the caller already organises
    (Encord recommends this for anything beyond small projects). Two concurrent first runs can each
    create one; later runs then refuse, naming both.

    Args:
        credentials: Encord credentials.
        title: The dataset's exact title.
        description: Description of the dataset, if created.

    Raises:
        AmbiguousTitle: If several datasets visible to the user carry ``title``; the message lists
            their hashes, so the caller can use one by hash.
    """
    if not title.strip():
        raise ValueError(f"a dataset title must not be blank, got {title!r}")
    client = credentials.get_client()
    listed = client.get_datasets(title_eq=title)
    found = single_match("dataset", title, ((info["dataset"].dataset_hash, info["dataset"].title) for info in listed))
    if found is not None:
        run_logger(__name__).info("Dataset %r exists: %s", title, found)
        return DatasetRef(dataset_hash=found, title=title, created=False)
    created = client.create_dataset(
        title, DatasetType.CORD_STORAGE, dataset_description=description, create_backing_folder=False
    )
    run_logger(__name__).info("Created dataset %r: %s", title, created.dataset_hash)
    return DatasetRef(dataset_hash=created.dataset_hash, title=title, created=True)


@task
def link_items_to_dataset(
    credentials: EncordCredentials,
    dataset_hash: str,
    item_uuids: Sequence[str | UUID],
    duplicates: DuplicateBehaviour = "SKIP",
    bundle_size: int = LINK_BUNDLE_SIZE,
) -> LinkResult:
    """Link storage items (any type, data groups included) into a dataset.

    Args:
        credentials: Encord credentials.
        dataset_hash: The dataset (see :func:`get_or_create_dataset`).
        item_uuids: Storage item UUIDs, e.g. ``UploadResult.items`` values or registration results.
        duplicates: ``SKIP`` links only items not yet in the dataset; ``FAIL`` links nothing and raises
            if any item is already there; ``DUPLICATE`` links every item again as a new data unit.
        bundle_size: Items per request (at most 1,000).

    Raises:
        AlreadyLinked: With ``FAIL``, if an item is already in the dataset (nothing is linked).
    """
    client = credentials.get_client()
    return _link(client, dataset_hash, item_uuids, duplicates, bundle_size)


@task
def link_folder_to_dataset(
    credentials: EncordCredentials,
    dataset_hash: str,
    folder_uuid: str | UUID,
    item_types: Sequence[StorageItemType | str] = (),
    duplicates: DuplicateBehaviour = "SKIP",
    bundle_size: int = LINK_BUNDLE_SIZE,
) -> LinkResult:
    """Link every item of a storage folder, or only those of some item types, into a dataset.

    The folder's own items are linked, not those of its subfolders; frames of image groups, sequences
    and DICOM series are part of their parent item and never linked on their own.

    Args:
        credentials: Encord credentials.
        dataset_hash: The dataset (see :func:`get_or_create_dataset`).
        folder_uuid: The storage folder (see ``get_or_create_folder``).
        item_types: Only items of these types (``StorageItemType`` members, values such as ``"image"``
            or names such as ``"IMAGE_GROUP"``); empty means every item.
        duplicates: As for :func:`link_items_to_dataset`.
        bundle_size: Items per request (at most 1,000).
    """
    types = parse_item_types(item_types)
    client = credentials.get_client()
    folder = open_folder(client, folder_uuid)
    listing = folder.list_items(
        item_types=types or None,
        order=FoldersSortBy.CREATED_AT,
        page_size=_LISTING_PAGE_SIZE,
        include_client_metadata=False,
    )
    item_uuids = [str(item.uuid) for item in listing]
    run_logger(__name__).info("Folder %s holds %d items to link", folder_uuid, len(item_uuids))
    return _link(client, dataset_hash, item_uuids, duplicates, bundle_size)


def _link(
    client: EncordUserClient,
    dataset_hash: str,
    item_uuids: Sequence[str | UUID],
    duplicates: DuplicateBehaviour,
    bundle_size: int,
) -> LinkResult:
    if not 1 <= bundle_size <= LINK_BUNDLE_SIZE:
        raise ValueError(f"bundle_size {bundle_size} must be between 1 and {LINK_BUNDLE_SIZE}")
    behaviour = sdk_behaviour(duplicates)
    # Only DUPLICATE can do without knowing what the dataset already holds.
    with_rows = duplicates != "DUPLICATE"
    dataset = client.get_dataset(dataset_hash, include_data_rows=with_rows)
    present = {normalise_item_uuid(row.backing_item_uuid): row.uid for row in dataset.data_rows} if with_rows else {}
    plan = plan_links(item_uuids, present, duplicates)
    result = LinkResult(dataset_hash=dataset_hash, already_present=plan.already_present)
    for start in range(0, len(plan.to_link), bundle_size):
        _send(dataset, list(plan.to_link[start : start + bundle_size]), behaviour, result)
    run_logger(__name__).info(
        "Dataset %s: %d items linked, %d already present, %d refused",
        dataset_hash, len(result.linked), len(result.already_present), len(result.failed),
    )  # fmt: skip
    return result


def _send(dataset: Dataset, bundle: list[str], behaviour: DataLinkDuplicatesBehavior, result: LinkResult) -> None:
    """Link one bundle; if Encord refuses it, isolate the refused items."""

    def send(part: Sequence[str]) -> None:
        rows = dataset.link_items([UUID(u) for u in part], behaviour)
        returned = {normalise_item_uuid(row.backing_item_uuid): row.uid for row in rows}
        for item in part:
            if item in returned:
                result.linked[item] = returned[item]
            else:
                result.failed[item] = "Encord accepted the link but returned no data unit for this item"

    def refused(item: str, exc: Exception) -> None:
        result.failed[item] = f"refused by Encord: {exc}"

    send_isolating(bundle, send, _REFUSALS, refused)
