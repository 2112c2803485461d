"""Run reports: progress reaches listeners, and the summary names every failure."""

from __future__ import annotations

from prefect_encord.events import resource
from prefect_encord.reporting import MAX_FAILURE_ROWS, MAX_OTHER_ROWS, Outcome, RunReport, add_progress_listener


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
    assert heard == [(0.5, "folder: ready"), (1.0, "ingest: 2 uploaded"), (1.0, "done")]


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
    assert "| created | 1 |" in markdown and "| skipped | 1 |" in markdown and "| failed | 1 |" in markdown
    assert "| upload | bad\\|name.png | bad.png: not a readable image |" in markdown


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
    assert f"| created | {MAX_OTHER_ROWS + 500} |" in markdown and f"| failed | {MAX_FAILURE_ROWS + 5} |" in markdown
    assert f"{MAX_FAILURE_ROWS + 5 - 200:,} more failures" in markdown
    assert "505 more are counted above, not listed" in markdown
