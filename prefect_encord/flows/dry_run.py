"""A dry run of a bucket ingest: what a run would register, replace, archive, delete and restore, changing nothing.

The bucket is listed (or the given keys looked up) and compared with the inventory exactly as a run would
(:func:`~prefect_encord.tasks.registration.register_bucket` with ``dry_run``), and the labels of items a
replacement would delete are looked up; nothing is sent to Encord but reads, no folder is created, no receipt
written. The plan is the run's table (one row per kind of change, the affected keys named as a run names them)
and its summary; what would fail (more vanished than ``max_deletions``, labelled items to replace) is counted as
failed there, and the state's message says the run would fail. The metadata, groups and dataset steps are not
planned.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect.client.schemas.objects import State
from prefect.states import Completed

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.events.reporting import FILES, Outcome, RunReport, artifact_key
from prefect_encord.flows.bucket_changes import too_many_vanished
from prefect_encord.flows.ingest_summary import IngestSummary, count_files
from prefect_encord.flows.parameters import CloudSource
from prefect_encord.tasks.folders import find_folder
from prefect_encord.tasks.label_rows import find_labelled_items
from prefect_encord.tasks.registration import register_bucket


def plan_ingest(
    credentials: EncordCredentials, source: CloudSource, folder_path: str, run_id: str
) -> State[IngestSummary]:
    """The plan of an ingest of ``source`` into ``folder_path``, as the run's final state (see the module)."""
    report = RunReport(title=f"Dry run of an ingest into {folder_path}", steps=["plan"],
                       key=artifact_key("encord-ingest-plan", folder_path))  # fmt: skip
    folder_uuid = find_folder(credentials, folder_path)
    summary = IngestSummary(run_id=run_id, folder_path=folder_path, folder_uuid=folder_uuid or "")
    root = source.block.root_url
    if folder_uuid is None:
        listed = sum(1 for _ in source.block.list_objects(source.include, source.exclude, source.modified_since))
        report.record([Outcome(FILES, root, "to register", f"folder {folder_path} does not exist yet: it would be "
                               "created and every object listed registered", count=listed)])  # fmt: skip
        return _finish(report, summary, [])
    with tempfile.TemporaryDirectory(prefix="encord-plan-") as scratch:
        plan = register_bucket.submit(
            credentials, source.block, folder_uuid, include=source.include, exclude=source.exclude,
            modified_since=source.modified_since, item_map=Path(scratch) / "plan.jsonl",
            refresh_inventory=source.refresh_inventory, keys=source.object_keys or None,
            sidecar_suffix=source.sidecar_suffix, dry_run=True,
        ).result()  # fmt: skip
    report.record([Outcome(FILES, root, "to register", "not in Encord as listed now", count=plan.planned)])
    report.record([Outcome(FILES, root, "skipped", "unchanged since registered", count=plan.unchanged)])
    report.record(Outcome(FILES, s.url, "failed", f"would not be registered: {s.reason}") for s in plan.skipped)
    report.record(Outcome(FILES, url, "to restore", f"back in the bucket: its archived item {item} would move back")
                  for url, item in plan.restored)  # fmt: skip
    _plan_changed(credentials, source, plan.changed, report)
    _plan_vanished(source, plan.vanished, report)
    summary.name_sources(changed=[url for url, _ in plan.changed], vanished=[url for url, _ in plan.vanished],
                         restored=[url for url, _ in plan.restored])  # fmt: skip
    return _finish(report, summary, _named(report))


def _plan_changed(
    credentials: EncordCredentials, source: CloudSource, changed: tuple[tuple[str, str], ...], report: RunReport
) -> None:
    if source.on_changed == "report" or not changed:
        report.record(Outcome(FILES, url, "changed", f"overwritten since it became item {item}: would be reported")
                      for url, item in changed)  # fmt: skip
        return
    labelled = (
        set() if source.replace_labelled_items else find_labelled_items(credentials, [i for _, i in changed]).items
    )
    report.record(Outcome(FILES, url, "failed" if item in labelled else "to replace",
                          f"overwritten; its item {item} has labels: would be kept (replace_labelled_items)"
                          if item in labelled else f"overwritten: item {item} would be deleted and registered anew")
                  for url, item in changed)  # fmt: skip


def _plan_vanished(source: CloudSource, vanished: tuple[tuple[str, str], ...], report: RunReport) -> None:
    if too_many_vanished(source, vanished):
        report.record(Outcome(FILES, url, "failed", f"deleted from the bucket; {len(vanished)} vanished, more than "
                              f"max_deletions={source.max_deletions}: the run would leave item {item} and fail")
                      for url, item in vanished)  # fmt: skip
        return
    status = {"report": "vanished", "archive": "to archive", "delete": "to delete"}[source.on_vanished]
    fate = "reported" if source.on_vanished == "report" else f"{source.on_vanished}d"
    report.record(Outcome(FILES, url, status, f"deleted from the bucket: item {item} would be {fate}")
                  for url, item in vanished)  # fmt: skip


def _named(report: RunReport) -> list[str]:
    """One line per kind of change, naming its first keys: ``- to archive (2): s3://…/a.png, s3://…/b.png``."""
    kept = [*report.failures, *report.others]
    lines = []
    for status in ("to replace", "to archive", "to delete", "to restore", "changed", "vanished", "failed"):
        shown = [o.subject for o in kept if o.step == FILES and o.status == status and o.count == 1][:_NAMED]
        total = report.count(FILES, status)
        if shown:
            more = f" and {total - len(shown)} more" if total > len(shown) else ""
            lines.append(f"- {status} ({total}): {', '.join(shown)}{more}")
    return lines


#: Keys named per kind of change in the plan's summary.
_NAMED = 10


def _finish(report: RunReport, summary: IngestSummary, named: list[str]) -> State[IngestSummary]:
    """Completed either way (a plan is no failed run: no failure event, no alert); the message says whether the run
    would fail, and the summary counts what would (the command line exits 1 on it)."""
    count_files(report, summary)
    summary.failures = report.failed
    summary.counts = report.counts
    summary.markdown = report.finish(["Nothing was changed: this is what the run would do.", "", *named])
    verdict = f"the run would end with {report.failure_message()}" if report.failed else "the run would succeed"
    return Completed(data=summary, message=f"Dry run, nothing changed: {verdict}.")
