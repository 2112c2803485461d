"""Apply metadata sidecars (see :mod:`prefect_encord.planning.sidecars`) to the items of the objects they describe.

Called by a bucket registration once its jobs have settled, so that every object listed with its sidecar has its
item: the pending sidecars (new, or changed since applied) are read from the bucket 16 at a time, each checked
like a manifest's row against the organisation's metadata schema (:func:`~prefect_encord.planning.manifests.
parse_manifest`) and written through the metadata importer (bundles of 1,000, read back and compared). A sidecar
that is not a JSON object, holds a value its key's type refuses, or is refused by Encord is reported by its URL
and stays pending, so the next run tries it again; a sidecar whose object has no item (not registered, or a
member of an image group) is reported and kept pending too. A sidecar gone from the bucket is forgotten.

Requests: none when no sidecar is pending (a re-run); else one for the schema, then per 1,000 sidecars 1,000 reads
from the bucket and what the importer needs (one bulk lookup, one bundled update, one read-back).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from encord import EncordUserClient
from encord.storage import StorageFolder

from prefect_encord.blocks.storage import CloudStorageIntegration
from prefect_encord.limits import MAX_BULK_ITEMS
from prefect_encord.planning.manifest_readers import ManifestRow
from prefect_encord.planning.manifests import parse_manifest
from prefect_encord.planning.metadata_values import ImportMode
from prefect_encord.planning.schema import KeyType
from prefect_encord.planning.schema_diff import value_types
from prefect_encord.planning.sidecars import SidecarError, SidecarOutcome, parse_sidecar
from prefect_encord.state.inventory import Inventory, PendingSidecar
from prefect_encord.tasks.metadata import MetadataImporter
from prefect_encord.tasks.metadata_schema import read_organisation_schema

#: Sidecars read from the bucket at once: each read is one small request, bound by its round trip.
_READERS = 16


def apply_sidecars(
    client: EncordUserClient,
    folder: StorageFolder,
    storage: CloudStorageIntegration,
    inventory: Inventory,
    mode: ImportMode,
    allow_unknown_keys: bool = False,
) -> SidecarOutcome:
    """Read, check and apply every pending sidecar of ``inventory`` to its object's item in ``folder``; keys the
    metadata schema does not declare are refused (most often a typo) unless ``allow_unknown_keys``."""
    outcome = SidecarOutcome()
    types: dict[str, KeyType] | None = None
    for batch in inventory.pending_sidecars(MAX_BULK_ITEMS):
        units = inventory.known([sidecar.target for sidecar in batch])
        with_items = [sidecar for sidecar in batch if sidecar.target in units]
        outcome.orphaned.update((s.url, s.target) for s in batch if s.target not in units)
        documents = _read(storage, with_items)
        inventory.forget_sidecars(s.url for s in with_items if documents[s.url] is None)  # gone from the bucket
        rows: list[ManifestRow] = []
        by_row: dict[int, PendingSidecar] = {}
        for sidecar in with_items:
            document = documents[sidecar.url]
            if document is None:
                continue
            if isinstance(document, SidecarError):
                outcome.failed[sidecar.url] = str(document)
                continue
            by_row[len(rows) + 1] = sidecar
            rows.append(ManifestRow(row=len(rows) + 1, item=units[sidecar.target].item, values=document))
        if not rows:
            continue
        if types is None:
            types = value_types(read_organisation_schema(client)[1])
        importer = MetadataImporter(
            client, types, folder, key_by="uuid", mode=mode, dry_run=False, bundle_size=MAX_BULK_ITEMS
        )
        result = importer.run(parse_manifest(rows, types, "uuid", allow_unknown_keys))
        problems = [*result.not_found, *result.invalid, *result.rejected, *result.mismatched]
        troubled = {problem.row for problem in problems}
        for row in sorted(troubled):
            reasons = (f"key {p.key!r}: {p.message}" if p.key else p.message for p in problems if p.row == row)
            outcome.failed[by_row[row].url] = "; ".join(reasons)
        inventory.applied_sidecars((s.url, s.fingerprint) for row, s in by_row.items() if row not in troubled)
        outcome.updated += result.updated
        outcome.unchanged += result.unchanged
    return outcome


def _read(
    storage: CloudStorageIntegration, sidecars: Sequence[PendingSidecar]
) -> dict[str, dict[str, object] | SidecarError | None]:
    """Each sidecar's metadata, or why it cannot be used, or None if it is gone from the bucket."""

    def read(sidecar: PendingSidecar) -> dict[str, object] | SidecarError | None:
        try:
            return parse_sidecar(storage.read_object(sidecar.key))
        except FileNotFoundError:
            return None
        except SidecarError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=_READERS, thread_name_prefix="sidecar-read") as pool:
        return dict(zip((s.url for s in sidecars), pool.map(read, sidecars), strict=True))
