"""The ``rollback`` flow: remove exactly what one ingest run created, from its receipt.

Only what the receipt and the run's item map list as *created by that run* go: data groups first (an
item in a group cannot be deleted while the group stands), then items. Items that were already present
when the run started are never touched, and deleting an item also unlinks it from datasets. Rolling back
twice is harmless: already-deleted items count as deleted.

Item UUIDs are Encord's, so a receipt applied to another Encord (another domain, another sandbox) would find
every item "already gone" and mark the run undone while its items stay. The receipt therefore names the
folder the run wrote into, and the rollback refuses, before deleting anything, an Encord that has no such
folder. Two rollbacks of one run take turns (a lock on the run id); the second finds everything gone.
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


@flow(name="encord-rollback", log_prints=True)
def rollback(run_id: str, *, credentials: EncordCredentials) -> State[DeletionResult]:
    """Delete the data groups and items one ingest run created.

    Ends "Completed with failures" if any could not be deleted (the receipt is then not marked rolled back).
    Called directly, the flow returns the :class:`DeletionResult`.

    Args:
        run_id: The flow run id of the ingest run (shown in its summary and receipt).
        credentials: A saved EncordCredentials block (the UI's block picker).
    """
    receipt = load(run_id)
    _check_same_encord(receipt, credentials)
    report = RunReport(title=f"Rollback of ingest run {run_id}", steps=["delete"], key="encord-rollback")
    with exclusive(f"rollback:{run_id}", f"the rollback of run {run_id}"):
        result = delete_items(credentials, [*receipt.groups_created, *sorted(items_created(receipt))])
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
