"""Finishing the data jobs a run left: the other half of the engine (:mod:`prefect_encord.jobs.engine`).

Every job's body goes to the :mod:`job ledger <prefect_encord.state.job_ledger>` before Encord is asked, its id
once Encord answers, and the job is journalled in the run's :mod:`item map
<prefect_encord.state.item_map>`. A run that dies between the start and the moment the job's items are in its map
(kill -9, a lost machine, a cut-off worker) leaves the record behind. :func:`finish_earlier_jobs` finishes
such records: a job with an id is polled, one without is started again from its body (safe: every job is
sent with ``skip_duplicate_urls``, so a repeated start returns what the first created), and the items the
job *created* are written to the item map of the run that started it. That is what the next upload or
registration into the folder does before it looks at the folder, and what a rollback does before it plans,
so a run killed mid-job is undone completely by its rollback alone.

Which items a job created: an upload job creates every item it returns (its slots were reserved for it); a
registration job also returns the items a URL already had, so only those Encord made at or after the job's
recorded submission time count, as when the job is settled normally (:mod:`prefect_encord.planning.outcomes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from encord import EncordUserClient
from encord.exceptions import ResourceNotFoundError
from encord.orm.storage import UploadLongPollingState
from encord.storage import StorageFolder

from prefect_encord.jobs.api_retries import call_with_retries
from prefect_encord.jobs.engine import is_pending, journal, poll_job, start_job
from prefect_encord.limits import MAX_BULK_ITEMS
from prefect_encord.planning.objects import as_utc
from prefect_encord.planning.outcomes import ItemFacts
from prefect_encord.runtime.run_logger import run_logger
from prefect_encord.state.item_map import ItemMapWriter
from prefect_encord.state.job_ledger import JobLedger, JobRecord


def finish_earlier_jobs(
    client: EncordUserClient, folder: StorageFolder, ledger: JobLedger, timeout_seconds: int
) -> int:
    """Finish every job an earlier run into ``folder`` left in the ledger (see the module); the caller holds the
    folder's lock. Returns how many there were.

    Raises:
        TimeoutError: If such a job is still running after ``timeout_seconds``: listing the folder now would
            send its content a second time, and a rollback now would leave its items.
    """
    earlier = [record for record in ledger.records() if record.folder_uuid == str(folder.uuid)]
    for record in earlier:
        state = _finish(folder, record, timeout_seconds)
        if is_pending(state):
            raise TimeoutError(
                f"{record.kind} job {record.job_id} of an earlier run into folder {folder.uuid} is still running "
                f"after {timeout_seconds} s; retry once it has finished"
            )
        if record.item_map is not None and record.kind != "sync":  # the run died before recording the job's items
            with ItemMapWriter(record.item_map) as writer:
                writer.write(_created(client, record, state), "created")
                journal(writer, record.key, "settled", record.job_id)
        ledger.forget(record.key)
    if earlier:
        run_logger(__name__).warning("finished %d data jobs an earlier run left unfinished", len(earlier))
    return len(earlier)


def item_facts(client: EncordUserClient, item_uuids: Sequence[str]) -> dict[str, ItemFacts]:
    """URL and creation time of each item, in bulk lookups of Encord's maximum size."""
    facts: dict[str, ItemFacts] = {}
    for start in range(0, len(item_uuids), MAX_BULK_ITEMS):
        for item in client.get_storage_items(list(item_uuids[start : start + MAX_BULK_ITEMS])):
            facts[str(item.uuid)] = ItemFacts(url=item.url, created_at=item.created_at)
    return facts


def _finish(folder: StorageFolder, record: JobRecord, timeout_seconds: int) -> Any:
    """Poll the recorded job (or sync), or start it from its body if it never got an id or no longer exists."""
    if record.job_id:
        try:
            return poll_job(folder, UUID(record.job_id), timeout_seconds, record.kind)
        except ResourceNotFoundError:
            run_logger(__name__).warning("%s job %s no longer exists; starting it again", record.kind, record.job_id)
    return poll_job(folder, start_job(folder, record), timeout_seconds, record.kind)


def _created(client: EncordUserClient, record: JobRecord, state: UploadLongPollingState) -> dict[str, str]:
    """Source → item of what the job created (see the module): by name for uploads, by URL for registrations."""
    if record.kind == "upload":
        return {str(item.name): str(item.item_uuid) for item in state.items_with_names}
    returned = [str(item.item_uuid) for item in state.items_with_names]
    facts = call_with_retries(lambda: item_facts(client, returned), f"looking up the items of job {record.job_id}")
    return {
        fact.url or uuid: uuid for uuid, fact in facts.items() if as_utc(fact.created_at) >= as_utc(record.submitted_at)
    }
