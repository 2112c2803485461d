"""Run reports: progress reaches listeners, and the summary names every failure."""

from __future__ import annotations

from prefect_encord.events.names import resource
from prefect_encord.events.reporting import (
    MAX_FAILURE_ROWS,
    MAX_OTHER_ROWS,
    Outcome,
    RunReport,
    add_progress_listener,
    artifact_key,
)


def test_progress_listeners_hear_each_step_and_the_end() -> None:
    heard: list[tuple[float, str]] = []
    stop = add_progress_listener(lambda fraction, message: heard.append((fraction, message)))
    try:
        report = RunReport(title="t", steps=["folder", "ingest"])
        report.step_done("folder", "ready")
        report.step_done("ingest", "2 uploaded")
        report.finish([])
    finally:
        stop()
    assert heard == [(0.5, "folder: ready"), (1.0, "ingest: 2 uploaded"), (1.0, "finished: nothing to change")]


def test_a_step_tells_how_far_it_is_from_inside_its_task_without_going_backwards() -> None:
    heard: list[tuple[float, str]] = []
    stop = add_progress_listener(lambda fraction, message: heard.append((fraction, message)))
    try:
        report = RunReport(title="t", steps=["folder", "ingest"])
        report.step_done("folder", "ready")
        progress = report.step_progress("ingest")
        progress.tell(10, 10, "files sent", phases=2)  # a finished phase is always told
        progress.tell(4, 10, "files registered", phase=1, phases=2)  # within a second of the last: not told
        progress.tell(5, 10, "files registered", phase=1, phases=2)
        progress.tell(10, 10, "files registered", phase=1, phases=2)
        progress.tell(7, None, "files registered")
    finally:
        stop()
    assert heard == [
        (0.5, "folder: ready"),
        (0.75, "ingest: 10 of 10 files sent"),
        (1.0, "ingest: 10 of 10 files registered"),
    ]


def test_a_step_of_unknown_size_tells_its_count_so_far() -> None:
    heard: list[str] = []
    stop = add_progress_listener(lambda fraction, message: heard.append(message))
    try:
        RunReport(title="t", steps=["ingest"]).step_progress("ingest").tell(12_000, None, "files registered")
    finally:
        stop()
    assert heard == ["ingest: 12,000 files registered so far"]


def test_summary_counts_outcomes_and_lists_failures_with_their_errors() -> None:
    report = RunReport(title="Ingest", steps=["ingest"])
    report.record(
        [
            Outcome("upload", "a.png", "created", "uuid-a"),
            Outcome("upload", "b.png", "skipped"),
            Outcome("upload", "bad|name.png", "failed", "bad.png: not a readable image"),
        ]
    )
    markdown = report.finish(["Folder **x**."])
    assert "| | created | already there | failed |" in markdown and "| upload | 1 | 1 | 1 |" in markdown
    assert "| upload | bad\\|name.png | bad.png: not a readable image |" in markdown


def test_counts_stay_apart_by_kind_and_one_row_can_stand_for_many() -> None:
    report = RunReport(title="Ingest", steps=["files", "metadata"])
    report.record([Outcome("files", "a.png", "created"), Outcome("files", "b.png", "created")])
    report.record([Outcome("data groups", "scene-1", "created")])
    report.record([Outcome("metadata items", "manifest.csv", "updated", count=4)])
    report.record([Outcome("metadata items", "manifest.csv", "skipped", count=0)])  # nothing: no row, no column
    markdown = report.finish([])
    assert report.count("files", "created") == 2 and report.count("metadata items", "updated") == 4
    assert "| | created | updated |" in markdown
    assert "| files | 2 | 0 |" in markdown and "| data groups | 1 | 0 |" in markdown
    assert "| metadata items | 0 | 4 |" in markdown
    assert report.ending() == "finished: 2 files created, 1 data groups created, 4 metadata items updated"


def test_artifact_keys_keep_pipelines_apart() -> None:
    assert artifact_key("encord-ingest", "Cams/2026 Front") == "encord-ingest-cams-2026-front"
    assert artifact_key("encord-ingest", "///") == "encord-ingest"
    assert len(artifact_key("encord-export", "x" * 200)) <= len("encord-export-") + 48


def test_resources_name_encord_objects_for_automations() -> None:
    assert resource("project", "p1", "Cats") == {
        "prefect.resource.id": "encord.project.p1",
        "prefect.resource.role": "project",
        "prefect.resource.name": "Cats",
    }


def test_a_huge_run_is_counted_in_full_but_keeps_bounded_rows() -> None:
    report = RunReport(title="Ingest", steps=["ingest"])
    report.record(Outcome("register", f"s3://b/{n}.png", "created", f"item-{n}") for n in range(MAX_OTHER_ROWS + 500))
    report.record(Outcome("register", f"s3://b/bad-{n}.png", "failed", "corrupt") for n in range(MAX_FAILURE_ROWS + 5))
    markdown = report.finish([])
    assert report.totals == {"created": MAX_OTHER_ROWS + 500, "failed": MAX_FAILURE_ROWS + 5}
    assert len(report.others) == MAX_OTHER_ROWS and len(report.failures) == MAX_FAILURE_ROWS
    assert report.others[0].subject == "s3://b/0.png" and report.failures[-1].subject.endswith(
        f"-{MAX_FAILURE_ROWS - 1}.png"
    )
    assert f"| register | {MAX_OTHER_ROWS + 500:,} | {MAX_FAILURE_ROWS + 5:,} |" in markdown
    assert f"{MAX_FAILURE_ROWS + 5 - 200:,} more failures" in markdown
    assert "505 more are counted above, not listed" in markdown
