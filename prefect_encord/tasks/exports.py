"""Export a project's labels as Encord JSON (one file per row, plus a JSON Lines index) and COCO.

The destination is a local directory or any of our cloud blocks (S3, GCS, Azure); the layout, the
watermark and what each run skips are planned in :mod:`prefect_encord.planning.exports`. A run:

1. reads the watermark and (for an incremental run) the index left by the previous run;
2. lists the selected rows edited since the watermark less an overlap (one request);
3. fetches the labels of new and changed rows, 1,000 per request, writing each bundle's files
   before fetching the next (memory holds one bundle, plus the labels COCO needs);
4. writes the COCO file (if asked for), then the index, and **last** the watermark: a run that stops
   part-way leaves the previous watermark, so the next run exports that part again.

Writes are idempotent (same row, same path, same bytes), so retrying a failed run is always safe.
Requests to Encord for 10,000 changed rows: two to open the project, one to list, ten to fetch.
Only rows someone has started are exported: creating rows just to export empty labels would change
the project. COCO covers every image-like row of the index (images, image groups, videos, DICOM,
NIfTI); in an incremental run the unchanged rows' JSON is read back from the destination to build it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Set
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from encord.constants.enums import DataType
from encord.objects import LabelRowV2
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.blocks.storage import CloudStorageIntegration
from prefect_encord.planning.exports import (
    COCO_SOURCES,
    DEFAULT_OVERLAP,
    CocoExport,
    ExportLayout,
    IndexEntry,
    UnsafeExportPath,
    Watermark,
    coco_document,
    merge_index,
    next_watermark,
    parse_index,
    parse_watermark,
    plan_run,
    removed_rows,
    render_index,
    render_json,
    select_rows,
    selection_key,
)
from prefect_encord.planning.label_rows import LabelRowFilters
from prefect_encord.runtime.extras import require
from prefect_encord.runtime.run_logger import run_logger
from prefect_encord.tasks.label_rows import BUNDLE_SIZE, initialise_in_bundles, list_rows, summarise
from prefect_encord.tasks.lookups import open_project

#: Files written (or read back) at once: each is a small request whose cost is latency.
_TRANSFERS = 8
_JSON = "application/json"


class ExportTarget(Protocol):
    """Where export files go: keys are ``/``-separated paths relative to the destination."""

    def write(self, key: str, data: bytes, content_type: str) -> None: ...

    def read(self, key: str) -> bytes | None:
        """The file's bytes, or None if there is none."""

    def location(self, key: str) -> str:
        """Where ``key`` is, for people: a local path or an object URL."""

    def delete(self, key: str) -> None:
        """Remove the file ``key``; one already gone is no error."""


class LocalDirectory:
    """A directory on this machine; files are replaced atomically, so a reader never sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):  # e.g. a symlink inside the tree pointing out of it
            raise UnsafeExportPath(f"{key!r} resolves to {path}, outside the export directory {self.root}")
        return path

    def write(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)

    def read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def location(self, key: str) -> str:
        return str(self._path(key))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class BucketTarget:
    """A bucket or container behind one of our cloud blocks; the block's ``prefix`` is not added to keys."""

    def __init__(self, block: CloudStorageIntegration) -> None:
        self.block = block

    def write(self, key: str, data: bytes, content_type: str) -> None:
        self.block.write_object(key, data, content_type)

    def read(self, key: str) -> bytes | None:
        try:
            return self.block.read_object(key)
        except FileNotFoundError:
            return None

    def location(self, key: str) -> str:
        return self.block.object_url(key)

    def delete(self, key: str) -> None:
        self.block.delete_object(key)


def export_target(destination: CloudStorageIntegration | Path | str) -> ExportTarget:
    """A cloud block as a bucket target; a path (or string) as a local directory.

    Raises:
        ValueError: If a string is a URL (``s3://…``): buckets are reached through their blocks, which
            hold the credentials, and a URL taken as a path would quietly write a local ``s3:`` folder.
    """
    if isinstance(destination, CloudStorageIntegration):
        return BucketTarget(destination)
    if "://" in str(destination):
        raise ValueError(f"{destination!r} is a URL; pass the bucket's S3, GCS or Azure block instead")
    return LocalDirectory(Path(destination))


class ExportResult(BaseModel):
    """What an export run wrote, and the watermark it left."""

    project_hash: str
    incremental: bool = Field(description="False if this run exported the whole selection.")
    reason: str = Field(description="Why the run was incremental or full.")
    project_title: str = ""
    exported: list[str] = Field(default_factory=list, description="Data hashes of the rows written by this run.")
    files: dict[str, str] = Field(default_factory=dict, description="Data hash → location of its exported file.")
    titles: dict[str, str] = Field(default_factory=dict, description="Data hash → data title of the exported rows.")
    unchanged: int = Field(default=0, description="Rows listed again (overlap) but already exported as they are.")
    not_started: int = Field(default=0, description="Rows nobody has started: no labels, not exported.")
    removed: list[str] = Field(
        default_factory=list,
        description="Data hashes of rows the previous export held that the selection no longer lists (deleted in "
        "Encord, or moved out of a filtered stage): their files and index lines were deleted, unless kept.",
    )
    kept_removed: bool = Field(default=False, description="True if the removed rows' files and lines were kept.")
    index: str = Field(description="Location of the JSON Lines index.")
    coco: str | None = Field(default=None, description="Location of the COCO file, if one is kept.")
    coco_images: int = Field(default=0, description="Images in the COCO file (frames of videos count one each).")
    coco_annotations: int = 0
    coco_left_out: list[str] = Field(
        default_factory=list, description="Titles of rows (or data-group members) COCO cannot express: no pixels."
    )
    watermark: datetime | None = Field(description="The watermark left for the next run.")
    previous_watermark: datetime | None = None


# Never cached: the result depends on the project's state when the task runs, not on its inputs.
@task(cache_policy=NO_CACHE)
def export_label_rows(
    credentials: EncordCredentials,
    project_hash: str,
    destination: CloudStorageIntegration | Path | str,
    prefix: str = "",
    filters: LabelRowFilters | None = None,
    coco: bool = False,
    incremental: bool = True,
    overlap: timedelta = DEFAULT_OVERLAP,
    bundle_size: int = BUNDLE_SIZE,
    keep_removed: bool = False,
) -> ExportResult:
    """Export the labels of a project's rows to ``destination``, only what changed since the last run.

    Args:
        credentials: Encord credentials.
        project_hash: The project.
        destination: A local directory, or an S3, GCS or Azure block (keys are not put under its
            ``prefix``; give ``prefix`` here).
        prefix: Folder of the export within the destination, e.g. ``"exports/labels"``.
        filters: Which rows (every row of the ``main`` branch, if None). Changing them makes the next
            run a full export of the new selection.
        coco: Also keep ``coco.json`` covering every image-like row exported.
        incremental: Export only rows edited since the watermark; False re-exports the whole
            selection and rebuilds the index (dropping rows that left it).
        overlap: How far before the watermark rows are listed again (see
            :mod:`prefect_encord.planning.exports`); rows unchanged since they were exported are skipped.
        bundle_size: Rows per label request (at most 1,000).
        keep_removed: Keep the files and index lines of rows the selection no longer lists (deleted in
            Encord, or moved out of a filtered stage); by default they are deleted. Either way the result
            names them.

    Raises:
        UnsafeExportPath: If ``prefix`` (or the branch) would put files outside the destination; checked
            before any request.
    """
    filters = filters or LabelRowFilters()
    if coco:  # before any work: the exporter needs numpy, OpenCV, pycocotools and shapely
        require("encord.utilities.coco.exporter", extra="coco", purpose="A COCO export (coco=True)")
    layout = ExportLayout.of(prefix, project_hash, filters.branch_name)
    target = export_target(destination)
    logger = run_logger(__name__)

    marker = target.read(layout.watermark_key)
    previous = parse_watermark(marker, target.location(layout.watermark_key)) if marker is not None else None
    index_bytes = target.read(layout.index_key)
    selection = selection_key(filters, coco)
    plan = plan_run(previous, selection, incremental, overlap, has_index=index_bytes is not None)
    previous_index = _previous_index(index_bytes, target.location(layout.index_key), plan.incremental)
    index = previous_index if plan.incremental else {}
    logger.info("Exporting project %s to %s: %s", project_hash, target.location(layout.root), plan.reason)

    project = open_project(credentials.get_client(), project_hash)
    rows = list_rows(project, filters, plan.edited_after)
    present = rows if plan.edited_after is None else list_rows(project, filters)  # one listing more: who left
    removed = removed_rows(previous_index, (row.data_hash for row in present))
    summaries = {row.data_hash: summarise(row) for row in rows}
    chosen = select_rows(list(summaries.values()), index, plan.incremental)
    by_hash = {row.data_hash: row for row in rows}

    fresh: list[IndexEntry] = []
    labels: dict[str, dict[str, Any]] = {}
    coco_export: CocoExport | None = None
    with ThreadPoolExecutor(max_workers=_TRANSFERS, thread_name_prefix="label-export") as pool:
        for bundle in initialise_in_bundles(project, [by_hash[s.data_hash] for s in chosen.to_fetch], bundle_size):
            writes = []
            for row in bundle:
                entry, blob, data = _export_row(row, summaries[row.data_hash].model_dump(), layout)
                writes.append(pool.submit(target.write, layout.key(entry.path), data, _JSON))
                fresh.append(entry)
                if coco:
                    labels[row.data_hash] = blob
            _wait(writes)
        gone = {entry.data_hash for entry in removed}
        if not keep_removed:
            _wait([pool.submit(target.delete, layout.key(entry.path)) for entry in removed])
        entries = merge_index(
            {h: e for h, e in index.items() if keep_removed or h not in gone}, fresh, plan.incremental
        )
        if keep_removed:
            entries = {**{entry.data_hash: entry for entry in removed}, **entries}
        if fresh or not plan.incremental or (removed and not keep_removed):
            if coco:
                labels.update(_read_back(pool, target, layout, entries.values(), skip=labels.keys()))
                members = {e.data_hash: e.members for e in entries.values() if e.members}
                coco_export = coco_document(labels.values(), project.ontology_structure, members)
                # Rows without pixels that this run did not fetch are named from the index, not read back.
                unread = tuple(e.data_title for e in entries.values() if e.data_hash not in labels)
                coco_export = CocoExport(coco_export.document, tuple(sorted((*coco_export.left_out, *unread))))
                target.write(layout.coco_key, render_json(coco_export.document), _JSON)
                if coco_export.left_out:
                    named = ", ".join(coco_export.left_out[:20])
                    logger.warning(
                        "COCO cannot express %d rows or data-group spaces (no pixels), left out of %s: %s",
                        len(coco_export.left_out), target.location(layout.coco_key), named,
                    )  # fmt: skip
            target.write(layout.index_key, render_index(entries.values()), "application/x-ndjson")

    carried = previous.last_edited_at if plan.incremental and previous is not None else None
    watermark = Watermark(
        project_hash=project_hash,
        branch_name=filters.branch_name,
        selection=selection,
        last_edited_at=next_watermark(carried, summaries.values()),
    )
    if watermark != previous:
        target.write(layout.watermark_key, render_json(watermark.model_dump(mode="json"), indent=2), _JSON)
    logger.info(
        "Exported %d label rows (%d unchanged, %d not started); watermark %s",
        len(fresh), len(chosen.unchanged), len(chosen.not_started), watermark.last_edited_at,
    )  # fmt: skip
    if removed:
        logger.warning(
            "%d rows of the previous export are no longer in the selection (deleted in Encord, or moved out of a "
            "filtered stage): %s their files and index lines; first: %s", len(removed),
            "kept" if keep_removed else "deleted", ", ".join(e.data_title for e in removed[:10]),
        )  # fmt: skip
    return ExportResult(
        project_hash=project_hash,
        incremental=plan.incremental,
        reason=plan.reason,
        exported=[entry.data_hash for entry in fresh],
        files={entry.data_hash: target.location(layout.key(entry.path)) for entry in fresh},
        titles={entry.data_hash: entry.data_title for entry in fresh},
        project_title=project.title,
        coco_images=coco_export.images if coco_export else 0,
        coco_annotations=coco_export.annotations if coco_export else 0,
        coco_left_out=list(coco_export.left_out) if coco_export else [],
        unchanged=len(chosen.unchanged),
        not_started=len(chosen.not_started),
        removed=[entry.data_hash for entry in removed],
        kept_removed=keep_removed,
        index=target.location(layout.index_key),
        coco=target.location(layout.coco_key) if coco else None,
        watermark=watermark.last_edited_at,
        previous_watermark=previous.last_edited_at if previous else None,
    )


def _previous_index(data: bytes | None, where: str, incremental: bool) -> dict[str, IndexEntry]:
    """The previous export's index: what an incremental run carries over, and what any run compares with the
    selection to find the rows that left it. A full run rebuilds the index, so a damaged one only costs it that
    comparison (and a warning); an incremental run stops, as it would lose rows."""
    if data is None:
        return {}
    try:
        return parse_index(data, where)
    except ValueError as exc:
        if incremental:
            raise
        run_logger(__name__).warning("%s; rows removed since cannot be found, their files stay", exc)
        return {}


def _export_row(
    row: LabelRowV2, summary: dict[str, Any], layout: ExportLayout
) -> tuple[IndexEntry, dict[str, Any], bytes]:
    """An initialised row's index entry, its Encord JSON, and the bytes of its file."""
    blob = row.to_encord_dict()
    entry = IndexEntry(**summary, path=layout.label_path(row.data_hash), members=_members(row))
    return entry, blob, render_json(blob, indent=2)


def _members(row: LabelRowV2) -> dict[str, str] | None:
    """A data group's members by space id (their file names), which its label JSON does not carry."""
    if row.data_type != DataType.GROUP:
        return None
    return {
        space.space_id: str(getattr(space.metadata, "file_name", space.space_id))
        for space in row.get_spaces()
        if space.space_id != "root"
    }


def _read_back(
    pool: ThreadPoolExecutor,
    target: ExportTarget,
    layout: ExportLayout,
    entries: Iterable[IndexEntry],
    skip: Set[str],
) -> dict[str, dict[str, Any]]:
    """The Encord JSON of earlier-exported image-like and data-group rows, read from the destination (for COCO)."""
    wanted = [e for e in entries if e.data_type in COCO_SOURCES and e.data_hash not in skip]
    reads = {e.data_hash: pool.submit(target.read, layout.key(e.path)) for e in wanted}
    found: dict[str, dict[str, Any]] = {}
    for data_hash, future in reads.items():
        data = future.result()
        if data is None:
            raise FileNotFoundError(
                f"{target.location(layout.key(layout.label_path(data_hash)))} is in the index but missing; "
                "run a full export (incremental=False) to write every row again"
            )
        found[data_hash] = json.loads(data)
    return found


def _wait(futures: Iterable[Future[Any]]) -> None:
    for future in futures:
        future.result()
