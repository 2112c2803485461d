"""The ``export_labels`` flow: a project's labels, incrementally, to a local directory or a cloud block.

Scheduled hourly, from the UI, or triggered when labels are completed: each run exports only the rows
edited since the watermark left by the previous run (Encord JSON per row, a JSONL index, optionally
COCO), then announces what it wrote with a ``prefect-encord.labels.exported`` event.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import flow
from pydantic import BaseModel, Field

from prefect_encord.blocks import load_cloud_block
from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.blocks.storage import CloudStorageIntegration
from prefect_encord.events import LABELS_EXPORTED_EVENT, resource
from prefect_encord.planning.label_rows import LabelRowFilters
from prefect_encord.reporting import Outcome, RunReport
from prefect_encord.tasks.exports import ExportResult, export_label_rows


class ExportDestination(BaseModel):
    """Where the export goes: a local directory, or a saved cloud integration block."""

    kind: Literal["local", "cloud"] = Field(default="local", description="local directory or cloud block")
    location: str = Field(
        default="exports",
        description="The directory (local), or the block as block type slug, a slash and the block name (cloud), "
        "e.g. 'encord-s3-integration/exports'.",
    )
    prefix: str = Field(default="", description="Folder within the destination, e.g. 'labels/nightly'.")


@flow(name="encord-export-labels", log_prints=True)
def export_labels(
    project_hash: str,
    destination: ExportDestination | None = None,
    filters: LabelRowFilters | None = None,
    coco: bool = False,
    incremental: bool = True,
    *,
    credentials: EncordCredentials,
) -> ExportResult:
    """Export a project's labels, only what changed since the last run.

    Args:
        project_hash: The Encord project.
        destination: Local directory or cloud block, and a prefix within it.
        filters: Which label rows (status, edited before/after, titles, workflow stage …).
        coco: Also keep a COCO file of every image-like row.
        incremental: Only rows edited since the previous run's watermark; False re-exports everything.
        credentials: A saved EncordCredentials block (the UI's block picker).
    """
    destination = destination or ExportDestination()
    report = RunReport(title=f"Export labels of project {project_hash}", steps=["export"], key="encord-export")
    report.relate("project", project_hash)
    target = _target(destination)
    result = export_label_rows(
        credentials,
        project_hash,
        target,
        prefix=destination.prefix,
        filters=filters,
        coco=coco,
        incremental=incremental,
    )
    report.record(Outcome("export", data_hash, "exported", result.index) for data_hash in result.exported)
    report.step_done("export", f"{len(result.exported)} rows exported ({result.reason}), {result.unchanged} unchanged")
    report.emit(
        LABELS_EXPORTED_EVENT,
        resource("project", project_hash),
        {"exported": len(result.exported), "index": result.index, "coco": result.coco,
         "watermark": result.watermark.isoformat() if result.watermark else None},
    )  # fmt: skip
    report.finish(
        [
            f"Project `{project_hash}` → `{result.index}`",
            f"- {len(result.exported)} rows exported, {result.unchanged} unchanged, {result.not_started} not started",
            f"- {'incremental' if result.incremental else 'full'} run: {result.reason}",
            f"- watermark for the next run: {result.watermark.isoformat() if result.watermark else 'none'}",
        ]
    )
    return result


def _target(destination: ExportDestination) -> CloudStorageIntegration | Path:
    if destination.kind == "local":
        return Path(destination.location)
    return load_cloud_block(destination.location)
