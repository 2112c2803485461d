"""The ``rollback`` flow: remove exactly what one ingest run created, from its receipt.

Only what the receipt and the run's item map list as *created by that run* go: data groups first (an
item in a group cannot be deleted while the group stands), then items, then the folders the run created
(once empty), its attachments of datasets to projects and the schema keys it added; what stays, and why,
is decided by :mod:`prefect_encord.planning.rollback_plan`. Items that were already present when the run
started are never touched, and deleting an item also unlinks it from datasets. Rolling back twice is
harmless: already-deleted items count as deleted.

Item UUIDs are Encord's, so a receipt applied to another Encord (another domain, another sandbox) would find
every item "already gone" and mark the run undone while its items stay. The receipt therefore names the
folder the run wrote into, and the rollback refuses, before deleting anything, an Encord that has no such
folder. Two rollbacks of one run take turns (a lock on the run id); the second finds everything gone.

A run killed mid-job (kill -9, a lost machine) has created items its item map does not list yet: the jobs it
left in the job ledger are finished first, exactly as the next upload or registration into the folder would
finish them, and their items join the run's item map before anything is planned. A job the run's item map
journals as started but that no ledger here holds (the run's worker was another machine) stays unsettled:
the rollback removes what it knows, names each such job and ends Failed without marking the run undone, since
items it created may remain.

Deleting an item deletes its label rows in every project. An ingest never labels anything, so labels on
the run's items are people's (or a model's) work done since: the rollback refuses, before deleting
anything, while any of its items has a started label row, and says how many in which projects;
``force=True`` deletes them with their labels.
"""

from __future__ import annotations

from uuid import UUID

from encord.exceptions import ResourceNotFoundError
from prefect import flow
from prefect.client.schemas.objects import State
from pydantic import Field

from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.events.names import RUN_ROLLED_BACK_EVENT, resource
from prefect_encord.events.reporting import SCHEMA_KEYS, Outcome, RunReport
from prefect_encord.jobs.api_retries import call_with_retries
from prefect_encord.planning.rollback_plan import RollbackPlan, plan_rollback
from prefect_encord.state.locks import exclusive
from prefect_encord.state.run_ledger import Receipt, RunLedger, items_created, load, receipts, unsettled_jobs
from prefect_encord.tasks.data_jobs import finish_unsettled_jobs
from prefect_encord.tasks.deletion import DeletionResult, delete_items
from prefect_encord.tasks.label_rows import LabelledItems, find_labelled_items
from prefect_encord.tasks.metadata_schema import remove_schema_keys
from prefect_encord.tasks.projects import detach_datasets

#: The kinds of thing a rollback counts, one row each in its summary.
ITEMS = "items and groups"
FOLDERS = "folders"
ATTACHMENTS = "dataset attachments"
#: Why a job the run journalled but no ledger here holds blocks the rollback.
UNSETTLED = (
    "started by the run and never settled, and not in this machine's job ledger: the items it created are unknown "
    "here. Roll back on the machine (or with the job-ledger directory) the run used; the run is not marked undone"
)


class RollbackResult(DeletionResult):
    """What a rollback did: the deletion of items, groups and folders, and the rest it undid or kept."""

    detached: list[str] = Field(default_factory=list, description="'project → dataset' attachments undone.")
    schema_keys_removed: list[str] = Field(default_factory=list, description="Schema keys soft-deleted.")
    kept: dict[str, str] = Field(default_factory=dict, description="What the run made and the rollback kept → why.")
    unsettled_jobs: dict[str, str] = Field(
        default_factory=dict, description="Data jobs the run started whose items are unknown here → why."
    )


@flow(name="encord-rollback", log_prints=True)
def rollback(run_id: str, *, credentials: EncordCredentials, force: bool = False) -> State[RollbackResult]:
    """Undo one ingest run: its data groups and items, then its folders (once empty), its attachments of
    datasets to projects and its schema keys; the datasets and projects it created are emptied and detached,
    and named, since Encord cannot delete them through its API.

    Ends Failed if any item could not be deleted (the receipt is then not marked rolled back). Called
    directly, the flow returns the :class:`RollbackResult`.

    Args:
        run_id: The flow run id of the ingest run (shown in its summary and receipt).
        credentials: A saved EncordCredentials block (the UI's block picker).
        force: Delete items even when they carry labels (the labels go with them).
    """
    load(run_id)  # no receipt: refused before anything else
    credentials.check_reachable()
    steps = ["items", "folders", "projects", "schema"]
    report = RunReport(title=f"Rollback of ingest run {run_id}", steps=steps, key="encord-rollback")
    with exclusive(f"rollback:{run_id}", f"the rollback of run {run_id}"):
        receipt = load(run_id)  # as the rollback before this one (if any) left it
        run = receipt_name(receipt)
        if receipt.rolled_back_at is None:  # once rolled back, its folder is gone on purpose
            _check_same_encord(receipt, credentials)
            if receipt.folder_uuid is not None:  # its unsettled jobs' items join its item map first
                finish_unsettled_jobs(credentials, receipt.folder_uuid)
        plan = plan_rollback(receipt, items_created(receipt), receipts())
        unsettled = {
            f"job {job_id or key}": UNSETTLED for key, job_id in unsettled_jobs(receipt).items()
        } if receipt.rolled_back_at is None else {}  # fmt: skip
        if not force:
            _refuse_labelled(run_id, plan.items, find_labelled_items(credentials, plan.items))
        deleted = delete_items(credentials, plan.items, remove_folders=plan.folders)
        result = RollbackResult(**deleted.model_dump(), kept=dict(plan.kept), unsettled_jobs=unsettled)
        report.record(Outcome(ITEMS, item, "deleted") for item in result.deleted)
        report.record(Outcome(ITEMS, item, "skipped", "already deleted") for item in result.already_deleted)
        report.record(Outcome(ITEMS, item, "failed", error) for item, error in result.failed.items())
        report.record(Outcome(ITEMS, job, "failed", why) for job, why in result.unsettled_jobs.items())
        report.step_done("items", f"{len(result.deleted)} deleted, {len(result.already_deleted)} already gone")
        if not result.failed and not result.unsettled_jobs:  # the rest goes only once every item is gone
            _undo_the_rest(credentials, plan, result)
            RunLedger(run_id).mark_rolled_back()
    report.record(Outcome(FOLDERS, f, "deleted") for f in result.folders_deleted)
    report.record(Outcome(FOLDERS, f, "skipped", "already deleted") for f in result.folders_already_deleted)
    report.record(Outcome(FOLDERS, f, "kept", why) for f, why in result.folders_kept.items())
    report.record(Outcome(ATTACHMENTS, pair, "deleted") for pair in result.detached)
    report.record(
        Outcome(SCHEMA_KEYS, key, "deleted", "soft-deleted: restorable") for key in result.schema_keys_removed
    )
    report.record(Outcome("kept", thing, "kept", why) for thing, why in result.kept.items())
    for step in steps[1:]:
        report.step_done(step, "not started: items are left" if result.failed or result.unsettled_jobs else "done")
    report.emit(RUN_ROLLED_BACK_EVENT, resource("flow-run", run_id, run), {"deleted": len(result.deleted)})
    report.finish([f"Ingest run `{run_id}` ({run}): {len(result.deleted)} items and groups deleted, "
                   f"{len(result.failed)} could not be; {len(result.folders_deleted)} folders deleted."])  # fmt: skip
    unknown = ", ".join(result.unsettled_jobs)
    return report.final_state(result, next_step=f"Unsettled: {unknown}, {UNSETTLED}." if unknown else "")


def _undo_the_rest(credentials: EncordCredentials, plan: RollbackPlan, result: RollbackResult) -> None:
    """Detach the run's datasets from projects and remove the schema keys it added."""
    for project, datasets in plan.detach.items():
        result.detached.extend(f"{project} → {d}" for d in detach_datasets(credentials, project, datasets))
    if plan.schema_keys:
        result.schema_keys_removed = remove_schema_keys(credentials, plan.schema_keys)


def receipt_name(receipt: Receipt) -> str:
    """A run as a person knows it: ``ingest into <folder path>`` (or its folder's id, for older receipts)."""
    return f"ingest into {receipt.folder_path or receipt.folder_uuid or '?'}"


def _check_same_encord(receipt: Receipt, credentials: EncordCredentials) -> None:
    """Refuse an Encord without the run's folder: its receipt was made against another one."""
    if receipt.folder_uuid is None:  # a receipt from before receipts named their folder
        return
    client = credentials.get_client()
    try:
        call_with_retries(lambda: client.get_storage_folder(UUID(receipt.folder_uuid)), "finding the run's folder")
    except ResourceNotFoundError:
        raise ValueError(
            f"run {receipt.run_id} wrote into folder {receipt.folder_uuid} of {receipt.encord}, which the Encord "
            f"at {credentials.domain} does not have: roll back with the credentials the run used"
        ) from None


def _refuse_labelled(run_id: str, doomed: list[str], labelled: LabelledItems) -> None:
    if labelled.by_project:
        raise ValueError(
            f"{len(labelled.items)} of the {len(doomed)} items and groups run {run_id} created have labels "
            f"({labelled.describe()}), which deleting them would delete too: nothing was deleted. "
            "To delete them and their labels, roll back with --force (the flow's force parameter)."
        )
