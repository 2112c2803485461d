"""The ``sync_metadata`` flow: a declared schema and a manifest onto the items of a folder.

The schema is applied additively (a type change or removal is refused unless allowed) before the
manifest, so values are validated against the schema they will live under; the manifest import writes
only items whose metadata differs, in bundles, and verifies by reading back.
"""

from __future__ import annotations

from prefect import flow
from prefect.client.schemas.objects import State

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.events.names import METADATA_SYNCED_EVENT, resource
from prefect_encord.events.reporting import METADATA_ITEMS, SCHEMA_KEYS, Outcome, RunReport, artifact_key
from prefect_encord.flows.parameters import MetadataStep
from prefect_encord.tasks.folders import get_or_create_folder
from prefect_encord.tasks.metadata import MetadataImportResult, import_metadata
from prefect_encord.tasks.metadata_schema import apply_metadata_schema


@flow(name="encord-sync-metadata", log_prints=True)
def sync_metadata(
    folder_path: str,
    metadata: MetadataStep,
    allow_type_changes: bool = False,
    dry_run: bool = False,
    *,
    credentials: EncordCredentials,
) -> State[MetadataImportResult | None]:
    """Apply a metadata schema and import a manifest into the items of a folder.

    Ends Failed if any row or key was refused, naming how many and where they are listed. Called directly,
    the flow returns the :class:`MetadataImportResult` (None without a manifest), or raises ``TooManyFailures``
    carrying it.

    Args:
        folder_path: Storage folder whose items the manifest names (e.g. "projects/2026/cams").
        metadata: Schema file and/or manifest, the manifest's key column and merge/overwrite mode.
        allow_type_changes: Let the schema change the type of existing scalar keys.
        dry_run: Report what would change, write nothing.
        credentials: A saved EncordCredentials block (the UI's block picker).
    """
    credentials.check_reachable()
    report = RunReport(
        title=f"Sync metadata of {folder_path}",
        steps=["schema", "manifest"],
        key=artifact_key("encord-metadata", folder_path),
    )
    folder_uuid = get_or_create_folder(credentials, folder_path)
    report.relate("folder", folder_uuid, folder_path)
    if metadata.schema_file:
        diff = apply_metadata_schema(
            credentials, metadata.schema_file, allow_type_changes=allow_type_changes, dry_run=dry_run
        )
        report.record(Outcome(SCHEMA_KEYS, key, "created", str(kind)) for key, kind in diff.added.items())
        report.record([Outcome(SCHEMA_KEYS, metadata.schema_file, "skipped", "already declared",
                               count=len(diff.unchanged))])  # fmt: skip
        report.record(Outcome(SCHEMA_KEYS, r.key, "failed", str(r)) for r in diff.refused)
    report.step_done("schema", "schema applied" if metadata.schema_file else "no schema given")
    result = None
    if metadata.manifest:
        result = import_metadata(
            credentials, metadata.manifest, key_by=metadata.key_by, folder_uuid=folder_uuid, mode=metadata.mode,
            dry_run=dry_run, allow_unknown_keys=metadata.allow_unknown_keys,
            declared=diff.added if metadata.schema_file and dry_run else None,
        )  # fmt: skip
        problems = [*result.not_found, *result.invalid, *result.rejected]
        report.record(Outcome(METADATA_ITEMS, p.item or f"row {p.row}", "failed", str(p)) for p in problems)
        status = "would update" if dry_run else "updated"
        report.record([Outcome(METADATA_ITEMS, str(metadata.manifest), status, "from the manifest", result.updated)])
        report.record([Outcome(METADATA_ITEMS, str(metadata.manifest), "skipped", "unchanged", result.unchanged)])
        report.emit(METADATA_SYNCED_EVENT, resource("folder", folder_uuid, folder_path), {"updated": result.updated})
    report.step_done("manifest", f"{result.updated if result else 0} items updated")
    report.finish(
        [
            f"Folder **{folder_path}** (`{folder_uuid}`){' — dry run, nothing written' if dry_run else ''}.",
        ]
    )
    return report.final_state(result)
