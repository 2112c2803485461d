"""Import custom metadata from a manifest onto existing items: checked first, merged or overwritten, verified after.

The flow, and why each step is there:

1. **Check** every row against the organisation's schema before anything is written
   (:mod:`prefect_encord.planning.manifests`). Encord refuses a whole bulk update for one bad value, so
   bad rows are reported and left out, and the good rows are written.
2. **Resolve** each row's item: by name or URL from one paged listing of the folder, by UUID with bulk
   lookups of up to 1,000.
3. **Compute** each item's complete new metadata: ``merge`` keeps the item's keys the manifest does not
   give, ``overwrite`` makes it exactly the manifest's. The whole dict is always sent, so the result is
   right whether Encord's update merges or replaces. Items that would not change are not written, so
   running the same import again writes nothing.
4. **Write** in bundles of up to 1,000 items, one request each. Should Encord still refuse a bundle (the
   schema changed since it was read, an item was deleted), it is split in halves until the refused item
   stands alone: the others are written and only it is reported.
5. **Verify** by reading every written item back (one bulk read per bundle) and comparing, as Encord's
   documentation asks; differences are reported, not assumed away.

Requests to Encord: one for the schema and one for the folder; then per 1,000 rows one listing page (or one
bulk lookup for UUIDs), one bundled update and one bulk read-back. About 3 per 1,000 rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from encord import EncordUserClient
from encord.exceptions import AuthorisationError, InvalidArgumentsError, ResourceNotFoundError
from encord.http.bundle import Bundle
from encord.storage import StorageFolder, StorageItem
from prefect import task
from pydantic import BaseModel, Field

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.limits import MAX_BULK_ITEMS, MAX_PAGE_SIZE
from prefect_encord.planning.manifest_readers import ManifestFormat, read_manifest
from prefect_encord.planning.manifests import InvalidRow, KeyBy, ManifestEntry, RowError, parse_manifest
from prefect_encord.planning.metadata_values import ImportMode, differing_keys, existing_problems, new_metadata
from prefect_encord.planning.schema import KeyType
from prefect_encord.planning.schema_diff import value_types
from prefect_encord.runtime.run_logger import run_logger
from prefect_encord.tasks.isolation import send_isolating
from prefect_encord.tasks.lookups import open_folder
from prefect_encord.tasks.metadata_schema import read_organisation_schema

# Refusals that concern the items sent rather than the caller or the service: worth isolating by bisection.
_REFUSALS = (InvalidArgumentsError, ResourceNotFoundError, AuthorisationError)
_MISSING = (ResourceNotFoundError, AuthorisationError)


class MetadataImportResult(BaseModel):
    """What an import did. Every problem names the manifest row (numbered from 1; a CSV header is not a row)."""

    dry_run: bool
    mode: ImportMode
    rows_read: int = 0
    updated: int = Field(
        default=0, description="Items written and read back as written; in a dry run, items that would be written."
    )
    unchanged: int = Field(default=0, description="Items whose metadata already was what the manifest makes it.")
    not_found: list[RowError] = Field(default_factory=list, description="Rows naming no item.")
    invalid: list[RowError] = Field(
        default_factory=list, description="Problems found before writing, one per row and key; those rows are skipped."
    )
    rejected: list[RowError] = Field(default_factory=list, description="Rows Encord refused when written.")
    mismatched: list[RowError] = Field(
        default_factory=list, description="Written items whose metadata read back differs from what was written."
    )
    unknown_keys: list[str] = Field(
        default_factory=list,
        description="Manifest keys the schema does not define: written unchecked, as Encord accepts them.",
    )

    @property
    def invalid_rows(self) -> int:
        return len({error.row for error in self.invalid})


@dataclass(frozen=True)
class _Write:
    entry: ManifestEntry
    item: StorageItem
    metadata: dict[str, Any]


class MetadataImporter:
    """Resolves, plans, writes and verifies manifest entries against one organisation (and optionally one folder)."""

    def __init__(
        self,
        client: EncordUserClient,
        types: dict[str, KeyType],
        folder: StorageFolder | None,
        *,
        key_by: KeyBy,
        mode: ImportMode,
        dry_run: bool,
        bundle_size: int,
    ) -> None:
        self.client = client
        self.types = types
        self.folder = folder
        self.key_by = key_by
        self.mode = mode
        self.dry_run = dry_run
        self.bundle_size = bundle_size
        self.result = MetadataImportResult(dry_run=dry_run, mode=mode)
        self._index: dict[str, list[StorageItem]] | None = None
        self._to_resolve: list[ManifestEntry] = []
        self._to_write: list[_Write] = []
        self._unknown_keys: set[str] = set()

    def run(self, parsed: Iterable[ManifestEntry | InvalidRow]) -> MetadataImportResult:
        for row in parsed:
            self.result.rows_read += 1
            if isinstance(row, InvalidRow):
                self.result.invalid.extend(row.errors)
                continue
            self._unknown_keys.update(key for key in row.metadata if key not in self.types)
            self._to_resolve.append(row)
            if len(self._to_resolve) >= MAX_BULK_ITEMS:
                self._resolve()
        self._resolve()
        self._flush()
        self.result.unknown_keys = sorted(self._unknown_keys)
        return self.result

    # --- resolving -----------------------------------------------------------------------------------------------

    def _resolve(self) -> None:
        entries, self._to_resolve = self._to_resolve, []
        if self.key_by == "uuid":
            found = self._fetch([entry.item for entry in entries])
            for entry in entries:
                self._plan(entry, self._in_folder(entry, found.get(entry.item)))
            return
        index = self._folder_index()
        for entry in entries:
            matches = index.get(entry.item, [])
            if len(matches) > 1:
                message = f"{len(matches)} items in the folder have this {self.key_by}; key the manifest by uuid"
                self.result.invalid.append(RowError(row=entry.row, item=entry.item, message=message))
            else:
                self._plan(entry, matches[0] if matches else None)

    def _folder_index(self) -> dict[str, list[StorageItem]]:
        """Items of the folder by name or URL, from one paged listing made the first time it is needed."""
        if self._index is None:
            assert self.folder is not None  # import_metadata requires a folder for name and URL keys
            self._index = {}
            for item in self.folder.list_items(page_size=MAX_PAGE_SIZE):
                key = item.name if self.key_by == "name" else item.url
                if key is not None:
                    self._index.setdefault(key, []).append(item)
        return self._index

    def _fetch(self, uuids: list[str]) -> dict[str, StorageItem]:
        """The items that exist among ``uuids`` (at most 1,000): one bulk request, split only around missing ones.

        Encord refuses a whole bulk lookup for one unknown or inaccessible UUID.
        """
        found: dict[str, StorageItem] = {}
        if uuids:

            def send(part: Sequence[str]) -> None:
                found.update({str(item.uuid): item for item in self.client.get_storage_items(list(part))})

            send_isolating(uuids, send, _MISSING, lambda missing, exc: None)
        return found

    def _in_folder(self, entry: ManifestEntry, item: StorageItem | None) -> StorageItem | None:
        if item is None or self.folder is None or item.parent_folder_uuid == self.folder.uuid:
            return item
        return None

    # --- planning and writing ------------------------------------------------------------------------------------

    def _plan(self, entry: ManifestEntry, item: StorageItem | None) -> None:
        if item is None:
            where = f"in folder {self.folder.uuid}" if self.folder is not None else "that you can access"
            message = f"no item with this {self.key_by} {where}"
            self.result.not_found.append(RowError(row=entry.row, item=entry.item, message=message))
            return
        current = item.client_metadata or {}
        if self.mode == "merge":
            problems = existing_problems(current, entry.metadata, self.types)
            if problems:
                self.result.invalid.extend(
                    RowError(row=entry.row, item=entry.item, key=key, message=why) for key, why in problems
                )
                return
        metadata = new_metadata(current, entry.metadata, self.mode)
        if not differing_keys(metadata, current, self.types):
            self.result.unchanged += 1
            return
        self._to_write.append(_Write(entry, item, metadata))
        if len(self._to_write) >= self.bundle_size:
            self._flush()

    def _flush(self) -> None:
        batch, self._to_write = self._to_write, []
        if not batch:
            return
        if self.dry_run:
            self.result.updated += len(batch)
            return
        self._verify(self._write(batch))

    def _write(self, batch: list[_Write]) -> list[_Write]:
        """Write ``batch`` as one bundled update; the writes that Encord accepted."""
        accepted: list[_Write] = []

        def send(part: Sequence[_Write]) -> None:
            with Bundle() as bundle:
                for write in part:
                    write.item.update(client_metadata=write.metadata, bundle=bundle)
            accepted.extend(part)

        def refused(write: _Write, exc: Exception) -> None:
            entry = write.entry
            self.result.rejected.append(
                RowError(row=entry.row, item=entry.item, message=f"Encord refused the update: {exc}")
            )

        send_isolating(batch, send, _REFUSALS, refused)
        return accepted

    def _verify(self, written: list[_Write]) -> None:
        """Read the written items back and compare each with what was written."""
        stored = self._fetch([str(write.item.uuid) for write in written])
        for write in written:
            item = stored.get(str(write.item.uuid))
            if item is None:
                message = "the item could not be read back after the update"
            else:
                differing = differing_keys(write.metadata, item.client_metadata or {}, self.types)
                if not differing:
                    self.result.updated += 1
                    continue
                message = f"read back with different values for keys {differing}"
            self.result.mismatched.append(RowError(row=write.entry.row, item=write.entry.item, message=message))


@task
def import_metadata(
    credentials: EncordCredentials,
    manifest: str | Path,
    key_by: KeyBy = "name",
    folder_uuid: str | UUID | None = None,
    mode: ImportMode = "merge",
    dry_run: bool = False,
    bundle_size: int = MAX_BULK_ITEMS,
    key_column: str | None = None,
    format: ManifestFormat | None = None,
    allow_unknown_keys: bool = False,
    declared: Mapping[str, KeyType] | None = None,
) -> MetadataImportResult:
    """Set the custom metadata of existing items from a CSV, JSON, JSONL or Parquet manifest.

    Good rows are written even when others are invalid; an invalid row is reported and never half-applied.
    Safe to re-run: items already as the manifest makes them are not written again.

    Args:
        credentials: Encord credentials.
        manifest: Path of the manifest; its format is taken from the suffix unless ``format`` is given.
        key_by: What identifies an item: its ``name`` or ``url`` in the folder, or its ``uuid``.
        folder_uuid: The folder whose items the manifest names; required for name and URL keys. With UUID keys,
            items outside it count as not found.
        mode: ``merge`` keeps the item's keys the manifest does not give; ``overwrite`` replaces them all.
        dry_run: Check, resolve and compare, but write nothing; ``updated`` counts what would be written.
        bundle_size: Items per bundled update, 1 to 1,000.
        key_column: The column holding the item key; defaults to ``key_by``.
        format: ``csv``, ``json``, ``jsonl`` or ``parquet``, if the suffix does not say.
        allow_unknown_keys: Write keys the organisation's metadata schema does not declare (unchecked, as
            Encord stores them); by default a row with one is refused, naming the key, since it is most often
            a typo.
        declared: Keys a dry run of a schema would add (its diff's ``added``), checked as if they existed.

    Returns:
        Counts, and every row that was not found, invalid, refused, or read back different.

    Raises:
        ValueError: For bad arguments, or a manifest that cannot be read at all
            (:class:`~prefect_encord.planning.manifest_readers.ManifestError`).
    """
    if key_by not in ("name", "url", "uuid"):
        raise ValueError(f"key_by must be 'name', 'url' or 'uuid', not {key_by!r}")
    if mode not in ("merge", "overwrite"):
        raise ValueError(f"mode must be 'merge' or 'overwrite', not {mode!r}")
    if not 1 <= bundle_size <= MAX_BULK_ITEMS:
        raise ValueError(f"bundle_size {bundle_size} must be from 1 to {MAX_BULK_ITEMS}")
    if folder_uuid is None and key_by != "uuid":
        raise ValueError(f"finding items by {key_by} needs folder_uuid")
    rows = read_manifest(manifest, key_column or key_by, format)
    client = credentials.get_client()
    _, existing = read_organisation_schema(client)
    types = value_types(existing)
    folder = open_folder(client, folder_uuid) if folder_uuid is not None else None
    importer = MetadataImporter(
        client, types, folder, key_by=key_by, mode=mode, dry_run=dry_run, bundle_size=bundle_size
    )
    result = importer.run(parse_manifest(rows, {**(declared or {}), **types}, key_by, allow_unknown_keys))
    _log(result)
    return result


def _log(result: MetadataImportResult) -> None:
    logger = run_logger(__name__)
    logger.info(
        "Metadata import (%s%s): %d rows, %d items %s, %d unchanged",
        result.mode,
        ", dry run" if result.dry_run else "",
        result.rows_read,
        result.updated,
        "to update" if result.dry_run else "updated",
        result.unchanged,
    )
    if result.unknown_keys:
        logger.warning("Keys not in the metadata schema, written unchecked: %s", ", ".join(result.unknown_keys))
    problems = {
        "not found": result.not_found,
        "invalid": result.invalid,
        "refused by Encord": result.rejected,
        "read back different": result.mismatched,
    }
    for label, errors in problems.items():
        if errors:
            logger.warning("%d %s, e.g. %s", len(errors), label, errors[0])
