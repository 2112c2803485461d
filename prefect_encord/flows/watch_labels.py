"""The ``watch_labels`` flow: announce newly completed labels with our own "labels completed" event.

For teams that cannot receive Encord's webhooks (no public endpoint), a schedule does the watching: each
run lists the rows that reached the workflow stage named ``stage`` since the last run's watermark (a
Prefect Variable per project) and, if there are any, emits ``prefect-encord.labels.completed`` naming
the project, which the ``export-on-completion`` deployment triggers on.
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow
from prefect.variables import Variable

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.events.names import LABELS_COMPLETED_EVENT, project_resource
from prefect_encord.events.reporting import RunReport
from prefect_encord.planning.label_rows import LabelRowFilters
from prefect_encord.tasks.label_rows import list_label_rows


def watermark_variable(project_hash: str) -> str:
    """Variable names allow lowercase letters, digits, dashes and underscores."""
    return f"encord-completed-{project_hash}".lower()


@flow(name="encord-watch-labels", log_prints=True)
def watch_labels(project_hash: str, stage: str = "Complete", *, credentials: EncordCredentials) -> list[str]:
    """Emit a "labels completed" event for rows that reached ``stage`` since the last run.

    Args:
        project_hash: The Encord project to watch.
        stage: Title of the workflow stage that means "done" (Encord's default workflow: "Complete").
        credentials: A saved EncordCredentials block (the UI's block picker).
    """
    credentials.check_reachable()
    report = RunReport(title=f"Watch project {project_hash}", steps=["watch"], key="encord-watch")
    name = watermark_variable(project_hash)
    previous = Variable.get(name, default=None)
    since = datetime.fromisoformat(str(previous)) if previous else None
    rows = list_label_rows(credentials, project_hash, LabelRowFilters(workflow_node_eq=stage, edited_after=since))
    done = [r for r in rows if r.label_hash is not None and r.last_edited_at is not None]
    if done:
        newest = max(r.last_edited_at for r in done if r.last_edited_at is not None)
        report.emit(
            LABELS_COMPLETED_EVENT,
            project_resource(project_hash),
            {"project_hash": project_hash, "completed": len(done), "data_hashes": [r.data_hash for r in done]},
        )
        Variable.set(name, newest.isoformat(), overwrite=True)
    report.step_done("watch", f"{len(done)} rows newly at {stage}")
    report.finish([f"Project `{project_hash}`: {len(done)} rows newly at stage {stage!r}."])
    return [r.data_hash for r in done]
