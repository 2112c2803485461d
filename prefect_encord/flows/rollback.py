"""The ``rollback`` flow: remove exactly what one ingest run created, from its receipt.

Only what the receipt and the run's item map list as *created by that run* go: data groups first (an
item in a group cannot be deleted while the group stands), then items. Items that were already present
when the run started are never touched, and deleting an item also unlinks it from datasets. Rolling back
twice is harmless: already-deleted items count as deleted.

Item UUIDs are Encord's, so a receipt applied to another Encord (another domain, another sandbox) would find
every item "already gone" and mark the run undone while its items stay. The receipt therefore names the
folder the run wrote into, and the rollback refuses, before deleting anything, an Encord that has no such
folder. Two rollbacks of one run take turns (a lock on the run id); the second finds everything gone.

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

from prefect_encord.api_retries import call_with_retries
from prefect_encord.blocks.credentials import EncordCredentials
from prefect_encord.events import RUN_ROLLED_BACK_EVENT, resource
from prefect_encord.locks import exclusive
from prefect_encord.reporting import Outcome, RunReport
from prefect_encord.run_ledger import Receipt, RunLedger, items_created, load
from prefect_encord.tasks.deletion import DeletionResult, delete_items
from prefect_encord.tasks.label_rows import LabelledItems, find_labelled_items


@flow(name="encord-rollback", log_prints=True)
def rollback(run_id: str, *, credentials: EncordCredentials, force: bool = False) -> State[DeletionResult]:
    """Delete the data groups and items one ingest run created.

    Ends "Completed with failures" if any could not be deleted (the receipt is then not marked rolled back).
    Called directly, the flow returns the :class:`DeletionResult`.

    Args:
        run_id: The flow run id of the ingest run (shown in its summary and receipt).
        credentials: A saved EncordCredentials block (the UI's block picker).
        force: Delete items even when they carry labels (the labels go with them).
    """
    receipt = load(run_id)
    credentials.check_reachable()
    _check_same_encord(receipt, credentials)
    report = RunReport(title=f"Rollback of ingest run {run_id}", steps=["delete"], key="encord-rollback")
    with exclusive(f"rollback:{run_id}", f"the rollback of run {run_id}"):
        doomed = [*receipt.groups_created, *sorted(items_created(receipt))]
        if not force:
            _refuse_labelled(run_id, doomed, find_labelled_items(credentials, doomed))
        result = delete_items(credentials, doomed)
        if not result.failed:
            RunLedger(run_id).mark_rolled_back()
    report.record(Outcome("delete", item, "deleted") for item in result.deleted)
    report.record(Outcome("delete", item, "skipped", "already deleted") for item in result.already_deleted)
    report.record(Outcome("delete", item, "failed", error) for item, error in result.failed.items())
    report.step_done("delete", f"{len(result.deleted)} deleted, {len(result.already_deleted)} already gone")
    report.emit(RUN_ROLLED_BACK_EVENT, resource("flow-run", run_id), {"deleted": len(result.deleted)})
    report.finish([f"Ingest run `{run_id}`: {len(result.deleted)} items and groups deleted, "
                   f"{len(result.failed)} could not be."])  # fmt: skip
    return report.final_state(result)


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
