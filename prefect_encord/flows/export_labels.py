"""The ``export_labels`` flow: a project's labels, incrementally, to a local directory or a cloud block.

Scheduled hourly, from the UI, or triggered when labels are completed: each run exports only the rows
edited since the watermark left by the previous run (Encord JSON per row, a JSONL index, optionally
COCO), then announces what it wrote with a ``prefect-encord.labels.exported`` event.
"""

from __future__ import annotations

from prefect import flow

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.events.names import LABELS_EXPORTED_EVENT, resource
from prefect_encord.events.reporting import Outcome, RunReport, artifact_key
from prefect_encord.flows.parameters import CloudDestination, Destination, LocalDestination
from prefect_encord.planning.label_rows import LabelRowFilters
from prefect_encord.tasks.exports import ExportResult, export_label_rows


@flow(name="encord-export-labels", log_prints=True)
def export_labels(
    project_hash: str,
    destination: Destination = LocalDestination(),  # noqa: B008 (an immutable model, shown as the form's default)
    filters: LabelRowFilters | None = None,
    coco: bool = False,
    incremental: bool = True,
    keep_removed: bool = False,
    *,
    credentials: EncordCredentials,
) -> ExportResult:
    """Export a project's labels, only what changed since the last run.

    Args:
        project_hash: The Encord project.
        destination: A local directory (by default under PREFECT_HOME) or a cloud block, and a prefix within it.
        filters: Which label rows (status, edited before/after, titles, workflow stage …).
        coco: Also keep a COCO file of every image-like row.
        incremental: Only rows edited since the previous run's watermark; False re-exports everything.
        keep_removed: Keep the files of rows no longer in the selection (deleted in Encord, or moved out of a
            filtered stage); by default they are deleted, and either way counted.
        credentials: A saved EncordCredentials block (the UI's block picker).
    """
    credentials.check_reachable()
    report = RunReport(
        title=f"Export labels of project {project_hash}",
        steps=["export"],
        key=artifact_key("encord-export", project_hash),
    )
    target = destination.block if isinstance(destination, CloudDestination) else destination.root()
    result = export_label_rows(
        credentials,
        project_hash,
        target,
        prefix=destination.prefix,
        filters=filters,
        coco=coco,
        incremental=incremental,
        keep_removed=keep_removed,
    )
    report.title = f"Export labels of {result.project_title or project_hash}"
    report.relate("project", project_hash, result.project_title or None)
    report.record(
        Outcome("label rows", result.titles.get(data_hash, data_hash), "exported", location)
        for data_hash, location in result.files.items()
    )
    report.record([Outcome("label rows", "listed again, unchanged", "skipped", count=result.unchanged)])
    report.record([Outcome("label rows", "nobody started them", "not started", count=result.not_started)])
    status = "kept" if result.kept_removed else "deleted"
    report.record(Outcome("label rows", data_hash, status, "no longer in the selection (deleted in Encord?)")
                  for data_hash in result.removed)  # fmt: skip
    if coco:
        report.record([Outcome("COCO images", result.coco or "", "exported", count=result.coco_images)])
        report.record(Outcome("COCO images", title, "left out", "no pixels: COCO cannot express it")
                      for title in result.coco_left_out)  # fmt: skip
    report.step_done(
        "export",
        f"{len(result.exported)} rows exported ({result.reason}), {result.unchanged} unchanged, "
        f"{len(result.removed)} removed since",
    )
    report.emit(
        LABELS_EXPORTED_EVENT,
        resource("project", project_hash, result.project_title or None),
        {"exported": len(result.exported), "unchanged": result.unchanged, "removed": len(result.removed),
         "index": result.index,
         "coco": result.coco, "coco_images": result.coco_images, "coco_annotations": result.coco_annotations,
         "coco_left_out": len(result.coco_left_out),
         "watermark": result.watermark.isoformat() if result.watermark else None},
    )  # fmt: skip
    lines = [
        f"Project **{result.project_title}** (`{project_hash}`) → index `{result.index}`",
        f"- {'incremental' if result.incremental else 'full'} run: {result.reason}",
        f"- watermark for the next run: {result.watermark.isoformat() if result.watermark else 'none'}",
    ]
    if result.removed:
        what = "kept" if result.kept_removed else "their files and index lines deleted"
        lines.append(f"- {len(result.removed)} rows no longer in the selection (deleted in Encord?): {what}")
    if result.coco:
        left_out = ", ".join(result.coco_left_out[:20]) + (" …" if len(result.coco_left_out) > 20 else "")
        lines.append(f"- COCO `{result.coco}`: {result.coco_images} images, {result.coco_annotations} annotations")
        if left_out:
            lines.append(f"- left out of COCO (no pixels): {len(result.coco_left_out)}: {left_out}")
    report.finish(lines)
    return result
