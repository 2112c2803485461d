"""Prefect event names and resources of prefect-encord, shared by flows, the webhook relay and deployments.

Resources follow one scheme: ``encord.<kind>.<id>`` with ``prefect.resource.role`` = kind, e.g.
``encord.project.<project_hash>`` (role ``project``), so a deployment trigger can match a project with
``match_related: {"prefect.resource.id": "encord.project.<hash>"}``.
"""

from __future__ import annotations

TASK_SUBMITTED_EVENT = "encord.task.submitted"
"""The webhook relay's event for Encord's ``task_submitted_event`` (a task submitted on an Annotate stage)."""

TASK_COMPLETED_EVENT = "encord.task.completed"
"""The webhook relay's event for Encord's ``task_completed_event`` (a task reached the Complete stage)."""

ITEMS_REGISTERED_EVENT = "prefect-encord.items.registered"
"""An ingest put files into a folder (resource: the folder, named by its path; payload: the counts)."""

GROUPS_CREATED_EVENT = "prefect-encord.groups.created"
"""An ingest created data groups (resource: the folder, named by its path; payload: the counts)."""

METADATA_IMPORTED_EVENT = "prefect-encord.metadata.imported"
"""An ingest imported a metadata manifest (resource: the folder; payload: updated / unchanged / failed)."""

PROJECT_ATTACHED_EVENT = "prefect-encord.project.attached"
"""An ingest attached its dataset to a project (resource: the project, named; payload: the dataset)."""

DATASET_LINKED_EVENT = "prefect-encord.dataset.linked"
"""An ingest linked items into a dataset (resource: the dataset; related: folder and project)."""

LABELS_EXPORTED_EVENT = "prefect-encord.labels.exported"
"""An export wrote label rows (resource: the project; payload: count, index location, watermark)."""

METADATA_SYNCED_EVENT = "prefect-encord.metadata.synced"
"""A metadata sync updated items (resource: the folder)."""

RUN_FAILURES_EVENT = "prefect-encord.run.failures"
"""A run ended with failures, Failed or (within its ``max_failures``) Completed with failures (resource: the
folder or project the run worked on, named; payload: the failures by kind of thing, the state, its message and
the flow run's id). An automation on it alerts whoever owns the pipeline; the README shows one."""

RUN_ROLLED_BACK_EVENT = "prefect-encord.run.rolled-back"
"""A rollback removed what an ingest run created (resource: that flow run)."""

LABELS_COMPLETED_EVENT = "prefect-encord.labels.completed"
"""Our own "labels completed" event: flows emit it (``RunReport.emit("labels.completed", ...)`` gives this
name), deployments trigger on it. Its resource should be the project (:func:`project_resource`)."""

BUCKET_OBJECTS_CHANGED_EVENT = "prefect-encord.bucket.objects-changed"
"""Objects of a bucket were created, overwritten or deleted, as its notifications told the relay; the payload
names the bucket (``cloud``, ``bucket``) and up to 1,000 keys (``object_keys``: not ``keys``, which a trigger's
template would read as the dict's method) (resource: :func:`bucket_resource`). A deployment that ingests those
keys triggers on it (see :mod:`prefect_encord.events.bucket_notifications`)."""

BUCKET_PROBE_EVENT = "prefect-encord.bucket.probe-received"
"""A bucket's notification of a probe object (``prefect-encord check-notifications``) reached the relay: the wiring
from the bucket to Prefect works. Resource ``prefect-encord.probe.<probe id>``, related to :func:`bucket_resource`;
payload ``cloud``, ``bucket``, ``key``, ``change``. Nothing triggers on it: a probe is never ingested."""


def resource(kind: str, identifier: str, name: str | None = None) -> dict[str, str]:
    """``{"prefect.resource.id": "encord.<kind>.<identifier>", "prefect.resource.role": kind}`` (+ name)."""
    result = {"prefect.resource.id": f"encord.{kind}.{identifier}", "prefect.resource.role": kind}
    if name:
        result["prefect.resource.name"] = name
    return result


def project_resource(project_hash: str, name: str | None = None) -> dict[str, str]:
    return resource("project", project_hash, name)


def data_unit_resource(data_hash: str, name: str | None = None) -> dict[str, str]:
    return resource("data-unit", data_hash, name)


def label_row_resource(label_hash: str, name: str | None = None) -> dict[str, str]:
    return resource("label-row", label_hash, name)


def bucket_resource(cloud: str, bucket: str) -> dict[str, str]:
    """``prefect-encord.bucket.<cloud>.<bucket>``: what a deployment ingesting that bucket's changes matches."""
    return {"prefect.resource.id": f"prefect-encord.bucket.{cloud}.{bucket}", "prefect.resource.role": "bucket",
            "prefect.resource.name": bucket}  # fmt: skip
