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

Within a call, reads are retried (:func:`~prefect_encord.jobs.api_retries.call_with_retries`); the dataset
create and each bundle's ``link_items`` are sent again after a transient failure only once a lookup shows the
failed attempt did not take effect (:func:`~prefect_encord.jobs.api_retries.create_once`). For a bundle, that
lookup re-reads the dataset's rows: rows of the bundle's items that were not there before it was sent are
what a lost answer had linked. A blind repeat would only be safe with ``SKIP``: ``DUPLICATE`` would link the
bundle twice, and ``FAIL`` would be refused for the items already linked and report them as failed.
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
from encord.orm.dataset import DataLinkDuplicatesBehavior, DataRow, DatasetType
from encord.orm.storage import FoldersSortBy, StorageItemType
from encord.storage import StorageFolder
from prefect import task
from pydantic import BaseModel, Field

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.jobs.api_retries import call_with_retries, create_once
from prefect_encord.limits import MAX_BULK_ITEMS, MAX_PAGE_SIZE
from prefect_encord.planning.links import (
    DuplicateBehaviour,
    normalise_item_uuid,
    parse_item_types,
    plan_links,
    sdk_behaviour,
)
from prefect_encord.planning.titles import single_match
from prefect_encord.runtime.run_logger import run_logger
from prefect_encord.tasks.isolation import send_isolating
from prefect_encord.tasks.lookups import open_folder

# Refusals that concern the items sent rather than the caller or the service: worth isolating by bisection.
_REFUSALS = (InvalidArgumentsError, ResourceNotFoundError, AuthorisationError, ResourceExistsError)


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
    found = call_with_retries(lambda: _find_dataset(client, title), f"looking up dataset {title!r}")
    if found is not None:
        run_logger(__name__).info("Dataset %r exists: %s", title, found)
        return DatasetRef(dataset_hash=found, title=title, created=False)
    created = create_once(
        lambda: _find_dataset(client, title),
        lambda: _create_dataset(client, title, description),
        f"creating dataset {title!r}",
    )
    run_logger(__name__).info("Created dataset %r: %s", title, created)
    return DatasetRef(dataset_hash=created, title=title, created=True)


def _create_dataset(client: EncordUserClient, title: str, description: str | None) -> str:
    """Create the dataset (one POST, not retried by the SDK); its hash."""
    created = client.create_dataset(
        title, DatasetType.CORD_STORAGE, dataset_description=description, create_backing_folder=False
    )
    return created.dataset_hash


def _find_dataset(client: EncordUserClient, title: str) -> str | None:
    """The hash of the one dataset titled exactly ``title``, or None (raises ``AmbiguousTitle`` for several)."""
    listed = client.get_datasets(title_eq=title)
    return single_match("dataset", title, ((info["dataset"].dataset_hash, info["dataset"].title) for info in listed))


@task
def link_items_to_dataset(
    credentials: EncordCredentials,
    dataset_hash: str,
    item_uuids: Sequence[str | UUID],
    duplicates: DuplicateBehaviour = "SKIP",
    bundle_size: int = MAX_BULK_ITEMS,
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
    bundle_size: int = MAX_BULK_ITEMS,
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
    folder = call_with_retries(lambda: open_folder(client, folder_uuid), f"opening folder {folder_uuid}")
    item_uuids = call_with_retries(lambda: _folder_items(folder, types), f"listing folder {folder_uuid}")
    run_logger(__name__).info("Folder %s holds %d items to link", folder_uuid, len(item_uuids))
    return _link(client, dataset_hash, item_uuids, duplicates, bundle_size)


def _folder_items(folder: StorageFolder, types: list[StorageItemType]) -> list[str]:
    """The UUIDs of the folder's own items (of ``types``, or all), oldest first."""
    listing = folder.list_items(
        item_types=types or None,
        order=FoldersSortBy.CREATED_AT,
        page_size=MAX_PAGE_SIZE,
        include_client_metadata=False,
    )
    return [str(item.uuid) for item in listing]


def _link(
    client: EncordUserClient,
    dataset_hash: str,
    item_uuids: Sequence[str | UUID],
    duplicates: DuplicateBehaviour,
    bundle_size: int,
) -> LinkResult:
    if not 1 <= bundle_size <= MAX_BULK_ITEMS:
        raise ValueError(f"bundle_size {bundle_size} must be between 1 and {MAX_BULK_ITEMS}")
    behaviour = sdk_behaviour(duplicates)
    # The rows are read even for DUPLICATE, which plans without them: a lost answer is settled against them.
    dataset = call_with_retries(
        lambda: client.get_dataset(dataset_hash, include_data_rows=True), f"reading dataset {dataset_hash}"
    )
    rows = dataset.data_rows
    present = {normalise_item_uuid(row.backing_item_uuid): row.uid for row in rows}
    plan = plan_links(item_uuids, present, duplicates)
    result = LinkResult(dataset_hash=dataset_hash, already_present=plan.already_present)
    known = {row.uid for row in rows}
    for start in range(0, len(plan.to_link), bundle_size):
        _send(dataset, list(plan.to_link[start : start + bundle_size]), behaviour, result, known)
    run_logger(__name__).info(
        "Dataset %s: %d items linked, %d already present, %d refused",
        dataset_hash, len(result.linked), len(result.already_present), len(result.failed),
    )  # fmt: skip
    return result


def _send(
    dataset: Dataset, bundle: list[str], behaviour: DataLinkDuplicatesBehavior, result: LinkResult, known: set[str]
) -> None:
    """Link one bundle; if Encord refuses it, isolate the refused items.

    ``known`` holds the data hashes of every row the dataset is known to have had before this bundle, and
    grows with the rows it links: a row of a bundle item outside it can only come from this bundle.
    """

    def send(part: Sequence[str]) -> None:
        rows = create_once(
            lambda: _linked_since(dataset, part, known),
            lambda: dataset.link_items([UUID(u) for u in part], behaviour),
            f"linking {len(part)} items into dataset {dataset.dataset_hash}",
        )
        known.update(row.uid for row in rows)
        returned = {normalise_item_uuid(row.backing_item_uuid): row.uid for row in rows}
        for item in part:
            if item in returned:
                result.linked[item] = returned[item]
            else:
                result.failed[item] = "Encord accepted the link but returned no data unit for this item"

    def refused(item: str, exc: Exception) -> None:
        result.failed[item] = f"refused by Encord: {exc}"

    send_isolating(bundle, send, _REFUSALS, refused)


def _linked_since(dataset: Dataset, items: Sequence[str], known: set[str]) -> list[DataRow] | None:
    """The dataset's rows of ``items`` that are not in ``known``, or None if there are none.

    Run after a ``link_items`` that failed: rows found here are what that request made (a request's items are
    linked in one transaction), and none means it made nothing and can be sent again. Were a request ever
    to link only some, the others would be reported failed by :func:`_send`, never lost silently.
    """
    dataset.refetch_data()
    wanted = set(items)
    new = [row for row in dataset.data_rows if row.uid not in known and row.backing_item_uuid
           and normalise_item_uuid(row.backing_item_uuid) in wanted]  # fmt: skip
    return new or None
