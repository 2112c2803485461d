"""What an ingest run reports: the summary it returns, the lines a person reads at its end, and the outcomes of
the steps the flow does not run itself (the sidecars a registration applied)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from prefect_encord.events.reporting import FILES, METADATA_ITEMS, Outcome, RunReport
from prefect_encord.planning.sidecars import SidecarOutcome

#: How many changed or vanished sources the summary names; the receipt and the item map name every one.
NAMED_SOURCES = 100


class IngestSummary(BaseModel):
    """What an ingest run did, in numbers and ids (the flow's return value)."""

    run_id: str
    folder_path: str = ""
    folder_uuid: str
    created: int = 0
    already_present: int = 0
    failed: int = Field(default=0, description="Files that could not be uploaded or registered.")
    changed: int = Field(default=0, description="Bucket objects overwritten since registered (items kept).")
    vanished: int = Field(default=0, description="Bucket objects deleted since registered whose items were kept.")
    deleted: int = Field(default=0, description="Items deleted because their objects were deleted from the bucket.")
    replaced: int = Field(default=0, description="Items replaced because their objects were overwritten.")
    archived: int = Field(default=0, description="Items moved to the archive folder: their objects were deleted.")
    restored: int = Field(default=0, description="Archived items moved back: their objects are in the bucket again.")
    changed_sources: list[str] = Field(
        default_factory=list,
        description=f"The first {NAMED_SOURCES} files found changed (``changed`` counts them all); every one is in the "
        "run's receipt and item map.",
    )
    vanished_sources: list[str] = Field(
        default_factory=list,
        description=f"The first {NAMED_SOURCES} objects found deleted from the bucket (``vanished``, ``archived`` and "
        "``deleted`` count them); every one is in the run's receipt and item map.",
    )
    restored_sources: list[str] = Field(
        default_factory=list,
        description=f"The first {NAMED_SOURCES} objects back in the bucket whose archived items were restored.",
    )
    failures: int = Field(default=0, description="Failures of every step: files, metadata, groups, links.")
    groups_created: int = 0
    groups_already_present: int = 0
    dataset_hash: str | None = None
    dataset_title: str | None = None
    linked: int = 0
    project_hash: str | None = None
    project_title: str | None = None
    metadata_updated: int = 0
    counts: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="Kind of thing (files, data groups…) → status → count: the summary's table."
    )
    item_map: str = Field(
        default="", description="JSON-lines file of source (path or URL) → item UUID, one line per item present."
    )
    markdown: str = ""

    def name_sources(
        self, changed: Sequence[str] = (), vanished: Sequence[str] = (), restored: Sequence[str] = ()
    ) -> None:
        """Name the first of the sources found changed, vanished or back (the receipt and item map hold them all)."""
        self.changed_sources = list(changed[:NAMED_SOURCES])
        self.vanished_sources = list(vanished[:NAMED_SOURCES])
        self.restored_sources = list(restored[:NAMED_SOURCES])


def count_files(report: RunReport, summary: IngestSummary) -> None:
    """The summary's file counts, read from the report: the table and the return value say the same."""
    summary.created = report.count(FILES, "created")
    summary.already_present = report.count(FILES, "skipped")
    summary.failed = report.count(FILES, "failed")
    summary.changed = report.count(FILES, "changed")
    summary.vanished = report.count(FILES, "vanished")
    summary.deleted = report.count(FILES, "deleted")
    summary.replaced = report.count(FILES, "replaced")
    summary.archived = report.count(FILES, "archived")
    summary.restored = report.count(FILES, "restored")


def files_progress(summary: IngestSummary, verb: str) -> str:
    """``"8 of 9 files uploaded, 0 already there, 1 failed"``: the progress artifact's line for the files step."""
    total = summary.created + summary.already_present + summary.failed
    return (
        f"{summary.created} of {total} files {verb}, {summary.already_present} already there, {summary.failed} failed"
    )


def next_step(run_id: str) -> str:
    """What a failing run's message says to do: the good files are in, so re-run once fixed, or undo it."""
    return (
        f"The files that worked are in Encord: run it again once the failures are fixed (what is there is "
        f"skipped), or undo run {run_id} with `prefect-encord rollback {run_id}`."
    )


def summary_lines(summary: IngestSummary) -> list[str]:
    """What the run touched, by name and id; every count is in the report's table below these lines."""
    lines = [
        f"Folder **{summary.folder_path}** (`{summary.folder_uuid}`), run `{summary.run_id}`.",
        f"- item map (source → item of every item present): `{summary.item_map}`",
        f"- to undo this run: `prefect-encord rollback {summary.run_id}` (or the rollback deployment)",
    ]
    if summary.dataset_hash:
        lines.append(f"- dataset **{summary.dataset_title}** (`{summary.dataset_hash}`)")
    if summary.project_hash:
        lines.append(f"- project **{summary.project_title}** (`{summary.project_hash}`)")
    return lines


def report_sidecars(outcome: SidecarOutcome, report: RunReport, summary: IngestSummary) -> None:
    """Name each sidecar that failed or waits for its object's item; count the items sidecars updated."""
    report.record([Outcome(METADATA_ITEMS, "sidecars", "updated", "from their sidecars", count=outcome.updated)])
    report.record([Outcome(METADATA_ITEMS, "sidecars", "skipped", "as their sidecars say", count=outcome.unchanged)])
    report.record(Outcome(METADATA_ITEMS, url, "failed", f"sidecar not applied: {why}")
                  for url, why in outcome.failed.items())  # fmt: skip
    report.record(Outcome(METADATA_ITEMS, url, "skipped", f"sidecar kept for later: its object {target} has "
                          "no item (not registered, or in a group)")
                  for url, target in outcome.orphaned.items())  # fmt: skip
    summary.metadata_updated = report.count(METADATA_ITEMS, "updated")
