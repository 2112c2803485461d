"""The ``ingest`` flow: a directory or a bucket into an Encord folder, grouped, described, linked, attached.

The heavy steps (upload, registration, data groups) are submitted to the flow's task runner, so the same
flow run with ``ingest.with_options(task_runner=DaskTaskRunner(...))`` does that work on Dask workers.

Every step is idempotent, so a scheduled re-run over unchanged data writes nothing: uploads are keyed
by content hash, cloud registrations use ``skip_duplicate_urls``, groups by name, metadata is compared
before writing, and links skip what is already linked. Every mutation is bracketed in the run ledger
(for audit and ``rollback``), reported in the run's artifacts, and announced as a Prefect event.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.events import names as events
from prefect_encord.events.names import resource
from prefect_encord.events.reporting import (
    FILES,
    GROUPS,
    LINKS,
    METADATA_ITEMS,
    PROJECT,
    SCHEMA_KEYS,
    Outcome,
    RunReport,
    artifact_key,
    check_max_failures,
)
from prefect_encord.flows.bucket_changes import settle_changed, settle_vanished
from prefect_encord.flows.cloud_sync import check_cloud_sync, sync_files
from prefect_encord.flows.dry_run import plan_ingest
from prefect_encord.flows.ingest_summary import (
    IngestSummary,
    count_files,
    files_progress,
    next_step,
    report_sidecars,
    summary_lines,
)
from prefect_encord.flows.parameters import (
    CloudSource,
    DatasetStep,
    GroupingStep,
    LocalSource,
    MetadataStep,
    Source,
)
from prefect_encord.planning.grouping import parse_rule
from prefect_encord.planning.ids import is_uuid
from prefect_encord.planning.layouts import parse_layout
from prefect_encord.planning.manifest_readers import read_manifest
from prefect_encord.planning.schema_sources import schema_from_file
from prefect_encord.runtime.crashpoints import crash_point
from prefect_encord.runtime.interrupts import Stopped, stop_requested
from prefect_encord.state.item_map import ItemMap
from prefect_encord.state.run_ledger import RunLedger
from prefect_encord.tasks.cloud_sync import ensure_synced_folder
from prefect_encord.tasks.data_groups import create_data_groups
from prefect_encord.tasks.datasets import get_or_create_dataset, link_items_to_dataset
from prefect_encord.tasks.folders import ensure_folder, folder_path_segments
from prefect_encord.tasks.local_files import source_root
from prefect_encord.tasks.metadata import import_metadata
from prefect_encord.tasks.metadata_schema import apply_metadata_schema
from prefect_encord.tasks.projects import attach_datasets, get_or_create_project
from prefect_encord.tasks.registration import register_bucket
from prefect_encord.tasks.uploads import upload_directory


@flow(name="encord-ingest", log_prints=True)
def ingest(
    source: Source,
    folder_path: str = "ingest",
    metadata: MetadataStep | None = None,
    grouping: GroupingStep | None = None,
    dataset: DatasetStep | None = None,
    max_failures: int = 0,
    *,
    credentials: EncordCredentials,
) -> State[IngestSummary]:
    """Ingest files into Encord: folder → register/upload → metadata → data groups → dataset → project.

    A run in which anything failed ends Failed, its message giving the counts, where they are listed, the run
    id and the rollback command; with ``max_failures`` above 0 it ends "Completed with failures" while it stays
    within that many. The good files land either way. Called directly, the flow returns the
    :class:`IngestSummary` (or raises ``TooManyFailures`` carrying it).

    Args:
        source: A local directory, or a saved cloud integration block with filters.
        folder_path: Storage folder path, e.g. "projects/2026/cams"; missing folders are created.
        metadata: Optional metadata schema (applied additively) and manifest to import.
        grouping: Optional rule turning items into data groups, and their layout.
        dataset: Optional dataset to link the items (or groups) into, and project to attach it to.
        max_failures: Failures tolerated: more than this many failed files or steps end the run Failed, fewer
            end it "Completed with failures". 0, the default: any failure fails the run.
        credentials: A saved EncordCredentials block (the UI's block picker; a run's parameters hold only a
            reference to it, never the key).
    """
    check_inputs(source, folder_path, metadata, grouping, max_failures)
    credentials.check_reachable()
    run_id = str(flow_run.get_id() or "local")
    if isinstance(source, CloudSource) and source.dry_run:
        return plan_ingest(credentials, source, folder_path, run_id)
    ledger = RunLedger(run_id)
    steps = ["folder", "ingest", *(["metadata"] if metadata else []), *(["groups"] if grouping else [])]
    steps += ["dataset"] if dataset else []
    report = RunReport(title=f"Ingest into {folder_path}", steps=steps, key=artifact_key("encord-ingest", folder_path))

    with _named_if_the_disk_fails(run_id):
        folder = (
            ensure_synced_folder(credentials, source.block, folder_path, source.sidecar_suffix)
            if isinstance(source, CloudSource) and source.method == "encord-cloud-sync"
            else ensure_folder(credentials, folder_path)
        )
        folder_uuid = folder.uuid
        ledger.target(folder_uuid, credentials.domain, folder_path)
        ledger.after(folders=folder.created)
        report.relate("folder", folder_uuid, folder_path)
        report.step_done("folder", f"folder {folder_path} is {folder_uuid}")
        summary = IngestSummary(run_id=run_id, folder_path=folder_path, folder_uuid=folder_uuid)

        item_map = _ingest_files(credentials, source, folder_uuid, ledger, report, summary, dataset is not None)
        if stop_requested():  # the receipt and item map hold what the files step did; nothing more is started
            raise Stopped(
                f"stopped after the files step: {summary.created} files created, {summary.failed} not started or "
                f"failed; `prefect-encord rollback {run_id}` undoes this run"
            )
        if summary.created:  # events only for what happened: a re-run that found everything announces nothing
            report.emit(
                events.ITEMS_REGISTERED_EVENT,
                resource("folder", folder_uuid, folder_path),
                {"created": summary.created, "already_present": summary.already_present, "failed": summary.failed,
                 "folder_path": folder_path},
            )  # fmt: skip
        summary.item_map = str(item_map.path)
        # Only grouping and linking need every item at once; a plain ingest of millions never loads the map.
        items = item_map.to_dict() if grouping is not None or dataset is not None else {}
        linkable = dict(items)
        if metadata is not None:
            _apply_metadata(credentials, metadata, folder_uuid, ledger, report, summary)
        if grouping is not None:
            linkable = _group(credentials, grouping, folder_uuid, items, ledger, report, summary)
        if dataset is not None:
            _link(credentials, dataset, linkable, ledger, report, summary)

        ledger.finish()
        summary.failures = report.failed
        summary.counts = report.counts
        summary.markdown = report.finish(summary_lines(summary))
    return report.final_state(summary, max_failures, next_step(run_id))


#: Errors of a disk that is full or will not be written: the run stops where its books do.
_DISK_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS})


@contextmanager
def _named_if_the_disk_fails(run_id: str) -> Iterator[None]:
    """Add the run id and the way back to a full or unwritable disk's error (which names its file, see
    :mod:`prefect_encord.state.durable_files`): every job is on record before it starts and its items before it leaves
    the job ledger, so a run stopped there is undone completely once it can write again."""
    try:
        yield
    except OSError as error:
        if error.errno not in _DISK_FAULTS:
            raise
        raise OSError(
            error.errno, f"{error.strerror}; run {run_id} stopped there, nothing started after it: once it can "
            f"write again, `prefect-encord rollback {run_id}` undoes the run"
        ) from error  # fmt: skip


def check_inputs(
    source: LocalSource | CloudSource,
    folder_path: str,
    metadata: MetadataStep | None,
    grouping: GroupingStep | None,
    max_failures: int,
) -> None:
    """Refuse, before anything is written, what can be known bad from here: a negative ``max_failures``, a
    folder path Encord would take literally, a missing directory, a schema, manifest or groups file that is
    missing or unreadable (a key twice, a bad column). The command line calls it before it starts anything else.
    """
    check_max_failures(max_failures)
    folder_path_segments(folder_path)
    if isinstance(source, LocalSource):
        source_root(source.directory)
    elif source.method == "encord-cloud-sync":
        check_cloud_sync(source, grouping)
    if metadata is not None and metadata.schema_file:
        schema_from_file(metadata.schema_file)
    if metadata is not None and metadata.manifest:
        # What would stop the whole import stops at or before its first record (not UTF-8, no key column, a
        # JSON document that does not parse, a Parquet file that does not open); later rows fail alone.
        next(iter(read_manifest(metadata.manifest, metadata.key_by)), None)
    if grouping is not None:
        parse_rule(grouping.rule)
        parse_layout(grouping.layout)


def _ingest_files(
    credentials: EncordCredentials,
    source: LocalSource | CloudSource,
    folder_uuid: str,
    ledger: RunLedger,
    report: RunReport,
    summary: IngestSummary,
    needs_items: bool = False,
) -> ItemMap:
    """Upload or register the source; returns the item map: source (path or URL) → item of every item present.

    The map is a file next to the run's receipt (see :mod:`prefect_encord.state.item_map`), so the run's memory
    does not grow with the bucket. A cloud sync maps the folder's items only when a later step ``needs_items``
    (linking into a dataset): listing a large folder on every event would cost more than the sync.
    """
    if isinstance(source, LocalSource):
        ledger.before(f"upload {source.directory} into folder {folder_uuid}")
        uploaded = upload_directory.submit(
            credentials, folder_uuid, source.directory, image_groups=source.image_groups, exclude=source.exclude,
            progress=report.step_progress("ingest"), item_map=ledger.item_map_path,
        ).result()  # fmt: skip
        already = set(uploaded.skipped) | set(uploaded.changed)
        created = {path: item for path, item in uploaded.items.items() if path not in already}
        assert uploaded.item_map is not None  # it was given one
        item_map = uploaded.item_map
        crash_point("ingest.after-files")
        ledger.after(jobs=uploaded.jobs, changed=uploaded.changed)
        summary.name_sources(changed=list(uploaded.changed))
        report.record(Outcome(FILES, path, "created", f"item {item}") for path, item in created.items())
        report.record(Outcome(FILES, path, "skipped", "already in the folder") for path in uploaded.skipped)
        report.record(Outcome(FILES, path, "changed", f"rewritten since it became item {item}, which is kept as it "
                              "is") for path, item in uploaded.changed.items())  # fmt: skip
        report.record(Outcome(FILES, path, "failed", error) for path, error in uploaded.failed.items())
        count_files(report, summary)
        report.step_done("ingest", files_progress(summary, "uploaded"))
        return item_map
    if source.method == "encord-cloud-sync":
        item_map = sync_files(credentials, source, folder_uuid, ledger, report, map_items=needs_items)
        count_files(report, summary)
        report.step_done("ingest", f"cloud sync: {report.count(FILES, 'synced')} files synced")
        return item_map
    ledger.before(f"register objects of {source.block.root_url} into folder {folder_uuid}")
    registered = register_bucket.submit(
        credentials, source.block, folder_uuid, include=source.include, exclude=source.exclude,
        modified_since=source.modified_since, item_map=ledger.item_map_path, progress=report.step_progress("ingest"),
        refresh_inventory=source.refresh_inventory, keys=source.object_keys or None,
        sidecar_suffix=source.sidecar_suffix, sidecar_mode=source.sidecar_mode,
        sidecar_unknown_keys=source.sidecar_unknown_keys,
    ).result()  # fmt: skip
    item_map = registered.item_map
    crash_point("ingest.after-files")
    ledger.after(jobs=[job.job_id for job in registered.jobs], changed=dict(registered.changed),
                 vanished=dict(registered.vanished), restored=dict(registered.restored))  # fmt: skip
    summary.name_sources(
        changed=[url for url, _ in registered.changed], vanished=[url for url, _ in registered.vanished],
        restored=[url for url, _ in registered.restored],
    )  # fmt: skip
    changed = {url for url, _ in registered.changed}
    restored = dict(registered.restored)
    report.record(Outcome(FILES, m.source, "created" if m.status == "created" else "skipped", f"item {m.item}")
                  for m in item_map if m.source not in changed and m.source not in restored)  # fmt: skip
    report.record(Outcome(FILES, url, "restored", f"back in the bucket: item {item} moved back from the archive")
                  for url, item in restored.items())  # fmt: skip
    report.record(Outcome(FILES, f.urls[0] if f.urls else "?", "failed", f.error) for f in registered.unit_errors)
    report.record(Outcome(FILES, s.url, "failed", f"not registered: {s.reason}") for s in registered.skipped)
    settle_changed(credentials, source, folder_uuid, registered.changed, ledger, report)
    settle_vanished(credentials, source, (folder_uuid, summary.folder_path), registered.vanished, ledger, report)
    if registered.sidecars is not None:
        report_sidecars(registered.sidecars, report, summary)
    count_files(report, summary)
    report.step_done("ingest", files_progress(summary, "registered"))
    return item_map


def _group(
    credentials: EncordCredentials,
    grouping: GroupingStep,
    folder_uuid: str,
    items: dict[str, str],
    ledger: RunLedger,
    report: RunReport,
    summary: IngestSummary,
) -> dict[str, str]:
    """Create the data groups; returns what a dataset should link: the groups, and items in no group."""
    ledger.before(f"create data groups in folder {folder_uuid}")
    result = create_data_groups.submit(credentials, folder_uuid, items, grouping.rule, grouping.layout).result()
    new = {name: uuid for name, uuid in result.groups.items() if name not in set(result.skipped)}
    crash_point("ingest.after-groups")
    ledger.after(groups=new.values())
    report.record(Outcome(GROUPS, name, "created", f"group {uuid}") for name, uuid in new.items())
    report.record(Outcome(GROUPS, name, "skipped", "already in the folder") for name in result.skipped)
    report.record(Outcome(GROUPS, name, "failed", error) for name, error in result.failed.items())
    summary.groups_created = report.count(GROUPS, "created")
    summary.groups_already_present = report.count(GROUPS, "skipped")
    report.step_done("groups", f"{len(new)} groups created, {len(result.skipped)} already there, "
                               f"{len(result.failed)} failed")  # fmt: skip
    if new:
        report.emit(
            events.GROUPS_CREATED_EVENT,
            resource("folder", folder_uuid, summary.folder_path),
            {"created": len(new), "already_present": len(result.skipped), "failed": len(result.failed),
             "folder_path": summary.folder_path},
        )  # fmt: skip
    return {**{source: items[source] for source in result.unmatched}, **result.groups}


def _apply_metadata(
    credentials: EncordCredentials,
    step: MetadataStep,
    folder_uuid: str,
    ledger: RunLedger,
    report: RunReport,
    summary: IngestSummary,
) -> None:
    """Apply the schema additively first (values are validated against it), then import the manifest."""
    if step.schema_file:
        diff = apply_metadata_schema(credentials, step.schema_file)
        declared = [*diff.added, *diff.restored, *diff.unchanged, *diff.enum_options_added, *diff.type_changes]
        ledger.after(schema_added=diff.added, schema_declared=declared)
        # A refused change (type change, removal) raises before anything is written: the run stops there.
        report.record(Outcome(SCHEMA_KEYS, key, "created", str(kind)) for key, kind in diff.added.items())
        report.record(
            [Outcome(SCHEMA_KEYS, step.schema_file, "skipped", "already declared", count=len(diff.unchanged))]
        )
    if step.manifest:
        imported = import_metadata(
            credentials, step.manifest, key_by=step.key_by, folder_uuid=folder_uuid, mode=step.mode,
            allow_unknown_keys=step.allow_unknown_keys,
        )  # fmt: skip
        problems = [*imported.not_found, *imported.invalid, *imported.rejected]
        report.record(Outcome(METADATA_ITEMS, p.item or f"row {p.row}", "failed", str(p)) for p in problems)
        report.record([Outcome(METADATA_ITEMS, step.manifest, "updated", "from the manifest", count=imported.updated)])
        report.record([Outcome(METADATA_ITEMS, step.manifest, "skipped", "unchanged", count=imported.unchanged)])
        summary.metadata_updated = report.count(METADATA_ITEMS, "updated")
        if imported.updated:
            report.emit(
                events.METADATA_IMPORTED_EVENT,
                resource("folder", folder_uuid, summary.folder_path),
                {"updated": imported.updated, "unchanged": imported.unchanged, "failed": len(problems),
                 "manifest": step.manifest, "folder_path": summary.folder_path},
            )  # fmt: skip
    report.step_done("metadata", f"{summary.metadata_updated} items' metadata updated")


def _link(
    credentials: EncordCredentials,
    step: DatasetStep,
    linkable: dict[str, str],
    ledger: RunLedger,
    report: RunReport,
    summary: IngestSummary,
) -> None:
    """Get or create the dataset, link what is not linked yet, and attach it to the project if asked.

    ``linkable`` maps each source (file path, URL or group name) to its item: the table names what it links.
    """
    item_uuids = list(linkable.values())
    names = {uuid: name for name, uuid in linkable.items()}
    dataset = get_or_create_dataset(credentials, step.title)
    ledger.after(datasets=[dataset.dataset_hash] if dataset.created else [])
    summary.dataset_hash, summary.dataset_title = dataset.dataset_hash, step.title
    report.relate("dataset", dataset.dataset_hash, step.title)
    ledger.before(f"link {len(item_uuids)} items into dataset {dataset.dataset_hash}")
    crash_point("ingest.before-link")
    linked = link_items_to_dataset(credentials, dataset.dataset_hash, item_uuids)
    crash_point("ingest.after-link")
    ledger.after(dataset=dataset.dataset_hash, linked=linked.linked)
    report.record(Outcome(LINKS, names.get(item, item), "linked", f"item {item} → data {data_hash}")
                  for item, data_hash in linked.linked.items())  # fmt: skip
    report.record(Outcome(LINKS, names.get(item, item), "skipped", f"item {item}") for item in linked.already_present)
    report.record(Outcome(LINKS, names.get(item, item), "failed", error) for item, error in linked.failed.items())
    summary.linked = report.count(LINKS, "linked")
    if step.project:
        summary.project_hash, summary.project_title = _attach(
            credentials, step.project, dataset.dataset_hash, step.title, ledger, report
        )
    report.step_done(
        "dataset", f"{summary.linked} linked into {step.title}, {len(linked.already_present)} already there"
    )
    if summary.linked:
        report.emit(
            events.DATASET_LINKED_EVENT,
            resource("dataset", dataset.dataset_hash, step.title),
            {"linked": summary.linked, "already_present": len(linked.already_present), "failed": len(linked.failed)},
        )


def _attach(
    credentials: EncordCredentials,
    project: str,
    dataset_hash: str,
    dataset_title: str,
    ledger: RunLedger,
    report: RunReport,
) -> tuple[str, str]:
    """Attach to a project given by hash, or get/create one by title; returns the project's hash and title."""
    ledger.before(f"attach dataset {dataset_hash} to project {project}")
    if is_uuid(project):
        attached = attach_datasets(credentials, project, [dataset_hash])
    else:
        found = get_or_create_project(credentials, project, dataset_hashes=[dataset_hash])
        ledger.after(projects=[found.project_hash] if found.created else [])
        attached = found.datasets
    if dataset_hash in attached.attached:
        ledger.after(attached=(attached.project_hash, dataset_hash))
    title = attached.title or project
    report.relate("project", attached.project_hash, title)
    status = "attached" if dataset_hash in attached.attached else "skipped"
    report.record([Outcome(PROJECT, title, status, f"dataset {dataset_title} ({dataset_hash})")])
    if status == "attached":
        report.emit(
            events.PROJECT_ATTACHED_EVENT,
            resource("project", attached.project_hash, title),
            {"dataset_hash": dataset_hash, "dataset_title": dataset_title, "newly_attached": True},
        )
    return attached.project_hash, title
